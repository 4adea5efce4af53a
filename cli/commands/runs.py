"""`tinysync runs`: the run history, one run's modules and log, and canceling a run."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.run_views import run_status, run_summary
from cli.console import brasilia, console, fail, guarded, load_settings, print_summary
from cli.database import for_reading, for_writing
from core.companies import check_id
from core.errors import ValidationError
from core.models import Company, SyncRun
from core.runs import RunStatus, cancel_run, get_run, list_logs, list_runs, notifier
from core.runs.model import Verification
from core.wording import module_label, verified_summary

app = typer.Typer(help="Run history.", no_args_is_help=True)
#: The shortest prefix of a run id `runs show` and `runs cancel` look up.
MIN_PREFIX = 4


def resolve_run_id(session: Session, given: str) -> str:
    """The id of the run `given` names: a whole id, or a prefix only one run's id starts with."""
    text = given.strip().lower()
    try:
        return check_id(text, "run id")
    except ValidationError:
        pass
    if len(text) < MIN_PREFIX or any(ch not in "0123456789abcdef-" for ch in text):
        fail(
            f"{given!r} is not a run id (give the whole id, or its first {MIN_PREFIX}+ characters)"
        )
    ids = list(session.scalars(select(SyncRun.id).where(SyncRun.id.like(f"{text}%")).limit(2)))
    if not ids:
        fail(f"no run id starts with {given!r}")
    if len(ids) > 1:
        fail(f"more than one run id starts with {given!r}: give more of it")
    return ids[0]


def _company_id(session: Session, given: str) -> str:
    """The id of the company `given` names (its id, or its exact name)."""
    try:
        company = session.get(Company, check_id(given, "company"))
    except ValidationError:
        company = None
    if company is None:
        named = list(session.scalars(select(Company).where(Company.name == given).limit(2)))
        if len(named) > 1:
            fail(f"more than one company is named {given!r}: give its id")
        company = named[0] if named else None
    if company is None:
        fail(f"no such company: {given}")
    return company.id


@app.command("list")
def runs_list(
    company: str | None = typer.Option(None, help="Only this company's runs (its id or name)."),
    status: str | None = typer.Option(None, help="Only runs in this status."),
    limit: int = typer.Option(20, help="How many (1 to 200)."),
) -> None:
    """The latest runs, newest first (times in Brasília)."""
    if not 1 <= limit <= 200:
        fail(f"--limit must be between 1 and 200, not {limit}")
    services = for_reading(load_settings())
    table = Table()
    for column in ("id", "company", "mode", "status", "period", "created", "processed", "calls"):
        table.add_column(column, no_wrap=column in ("id", "created"))
    with services.session_factory() as session:
        company_id = _company_id(session, company) if company else None
        runs, _ = guarded(list_runs, session, company_id=company_id, status=status, limit=limit)
        names = {c.id: c.name for c in session.scalars(select(Company))}
        for run in runs:
            s = run_summary(run)
            table.add_row(
                s["runId"],
                names.get(s["companyId"], s["companyId"]),
                s["mode"],
                s["status"],
                f"{s['startDate']}..{s['endDate']}",
                brasilia(run.createdAt),
                str(s["processed"]),
                str(s["tinyCalls"]),
            )
    console.print(table)


@app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="The run id (or a unique prefix).")) -> None:
    """One run: its modules, what each verified, and its log (times in Brasília)."""
    services = for_reading(load_settings())
    with services.session_factory() as session:
        found = resolve_run_id(session, run_id)
        status = guarded(run_status, session, found, log_limit=1)
        logs, _ = list_logs(session, found, limit=500)
    print_summary(status)
    for key, entry in status["progress"]["modules"].items():
        if entry.get("verified"):
            summary = verified_summary(Verification.from_json(entry["verified"]))
            console.print(f"{module_label(key)}: {summary}", highlight=False, markup=False)
    for entry in reversed(logs):
        module = f" [{entry.module}]" if entry.module else ""
        console.print(
            f"{brasilia(entry.timestamp)} {entry.level:<5}{module} {entry.message}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@app.command("cancel")
def runs_cancel(run_id: str = typer.Argument(..., help="The run id (or a unique prefix).")) -> None:
    """Cancel a queued or running run."""
    services = for_writing(load_settings())
    with services.session_factory() as session:
        found = resolve_run_id(session, run_id)
        run = guarded(get_run, session, found)
        if RunStatus(run.status).is_final:
            fail(f"run {run.id} is already finished ({run.status}): there is nothing to cancel")
        run = guarded(
            cancel_run,
            session,
            found,
            reason="cancelada pela linha de comando",
            on_finish=notifier(services.session_factory, services.settings),  # NOTIFY_ON=all
        )
    console.print(f"run {run.id} is {run.status}")
