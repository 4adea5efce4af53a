"""What the commands print: the consoles, one-line failures, and the table of a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from core.errors import SyncError
from core.runs import ModuleStatus
from core.settings import Settings, SettingsError

P = ParamSpec("P")
T = TypeVar("T")

console = Console()
err = Console(stderr=True)

STATUS_STYLE: dict[str, str] = {
    ModuleStatus.PENDING: "dim",
    ModuleStatus.RUNNING: "yellow",
    ModuleStatus.DONE: "green",
    ModuleStatus.FAILED: "red",
    ModuleStatus.CANCELED: "magenta",
}


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line to stderr and exit non-zero."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def guarded(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(...)`, with an error tinysync raised on purpose turned into one line and an exit."""
    try:
        return func(*args, **kwargs)
    except SyncError as exc:
        run_id = getattr(exc, "run_id", None)
        fail(f"{exc} (active run: {run_id})" if run_id else str(exc))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, with a clear message when one is wrong."""
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        fail(str(exc))


def styled(module_status: str) -> str:
    """A module's status in its colour."""
    return f"[{STATUS_STYLE.get(module_status, '')}]{module_status}[/]"


def print_summary(status: dict[str, Any]) -> None:
    """A run's modules as a table (the run as `run_status` shows it), then its error if any."""
    table = Table(title=f"run {status['runId']} — {status['status']}")
    for column in ("module", "status", "processed", "skipped", "Tiny calls", "errors"):
        table.add_column(column, justify="right" if column[0] in "pstT" else "left")
    for key, entry in status["progress"]["modules"].items():
        errors = entry.get("errors") or []
        table.add_row(
            key,
            styled(entry.get("status", "")),
            str(entry.get("processed", 0)),
            str(entry.get("skipped", 0)),
            str(entry.get("calls", 0)),
            (errors[-1][:60] if errors else ""),
        )
    console.print(table)
    if status.get("errorMessage"):
        console.print(f"[red]{status['errorMessage']}[/red]", highlight=False)
