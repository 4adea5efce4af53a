"""What the commands print: the consoles, one-line failures, and the table of a run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.errors import ActiveRunExists, SyncError
from core.runs import ModuleStatus
from core.settings import Settings, SettingsError
from core.wording import module_label

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
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(...)`, with an error tinysync raised on purpose turned into one line and an exit."""
    try:
        return func(*args, **kwargs)
    except ActiveRunExists as exc:
        fail(f"{exc} (active run: {exc.run_id})")
    except SyncError as exc:
        fail(str(exc))


BRASILIA = ZoneInfo("America/Sao_Paulo")


def brasilia(moment: datetime) -> str:
    """A stored moment (UTC) as Brasília's wall clock, with its zone: "2026-12-01 09:30:00 -03"."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = aware.astimezone(BRASILIA)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


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
        table.add_column(column, justify="right" if column[0] in "pstTe" else "left")
    errors: list[str] = []
    for key, entry in status["progress"]["modules"].items():
        module_errors = entry.get("errors") or []
        errors += [f"{module_label(key)}: {message}" for message in module_errors]
        table.add_row(
            module_label(key),
            styled(entry.get("status", "")),
            str(entry.get("processed", 0)),
            str(entry.get("skipped", 0)),
            str(entry.get("calls", 0)),
            str(len(module_errors)),
        )
    console.print(table)
    for line in errors:  # whole, under the table: a cut error says nothing
        console.print(line, style="red", highlight=False, markup=False, soft_wrap=True)
    if status.get("errorMessage") and not errors:
        console.print(status["errorMessage"], style="red", highlight=False, markup=False)
