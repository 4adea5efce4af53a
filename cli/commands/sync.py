"""`tinysync sync`: one run of one company now, inline, with live progress."""

from __future__ import annotations

import typer

from cli.console import console, guarded, load_settings, print_summary
from cli.database import for_writing
from cli.progress import drive
from core.runs import Mode, RunStatus, create_run, start_run


def sync(
    company: str = typer.Option(..., help="The company id."),
    month: str | None = typer.Option(None, help="A month YYYY-MM (default: incremental)."),
) -> None:
    """Sync one company now, inline, with live progress (Ctrl-C cancels the run)."""
    settings = load_settings()
    services = for_writing(settings)
    with services.session_factory() as session:
        run = guarded(
            create_run,
            session,
            settings,
            company_id=company,
            mode=Mode.PERIOD if month else Mode.INCREMENTAL,
            month=month,
            triggered_by="cli",
        )
        start_run(session, run.id)
    console.print(f"run {run.id}")
    status = drive(services, run.id)
    print_summary(status)
    if status["status"] != RunStatus.DONE:
        raise typer.Exit(1)
