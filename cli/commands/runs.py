"""`tinysync runs`: the run history, one run's modules and log, and canceling a run."""

from __future__ import annotations

import typer
from rich.table import Table

from api.run_views import run_status, run_summary
from cli.console import console, guarded, load_settings, print_summary
from cli.database import for_reading, for_writing
from core.runs import cancel_run, list_logs, list_runs
from core.runs.model import Verification
from core.wording import module_label, verified_summary

app = typer.Typer(help="Run history.", no_args_is_help=True)


@app.command("list")
def runs_list(
    company: str | None = typer.Option(None, help="Only this company's runs."),
    status: str | None = typer.Option(None, help="Only runs in this status."),
    limit: int = typer.Option(20, help="How many."),
) -> None:
    """The latest runs, newest first."""
    services = for_reading(load_settings())
    table = Table()
    for column in ("id", "company", "mode", "status", "period", "created", "processed", "calls"):
        table.add_column(column)
    with services.session_factory() as session:
        runs, _ = guarded(list_runs, session, company_id=company, status=status, limit=limit)
        for run in runs:
            s = run_summary(run)
            table.add_row(
                s["runId"],
                s["companyId"][:8],
                s["mode"],
                s["status"],
                f"{s['startDate']}..{s['endDate']}",
                s["createdAt"][:19],
                str(s["processed"]),
                str(s["tinyCalls"]),
            )
    console.print(table)


@app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="The run id.")) -> None:
    """One run: its modules, what each verified, and its log."""
    services = for_reading(load_settings())
    with services.session_factory() as session:
        status = guarded(run_status, session, run_id, log_limit=1)
        logs, _ = list_logs(session, run_id, limit=500)
    print_summary(status)
    for key, entry in status["progress"]["modules"].items():
        if entry.get("verified"):
            summary = verified_summary(Verification.from_json(entry["verified"]))
            console.print(f"{module_label(key)}: {summary}", highlight=False)
    for entry in reversed(logs):
        module = f" [{entry.module}]" if entry.module else ""
        console.print(
            f"{entry.timestamp:%Y-%m-%d %H:%M:%S} {entry.level:<5}{module} {entry.message}",
            highlight=False,
        )


@app.command("cancel")
def runs_cancel(run_id: str = typer.Argument(..., help="The run id.")) -> None:
    """Cancel a queued or running run."""
    services = for_writing(load_settings())
    with services.session_factory() as session:
        run = guarded(cancel_run, session, run_id, reason="canceled from the command line")
    console.print(f"run {run.id} is {run.status}")
