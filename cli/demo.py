"""`tinysync demo`: SQLite, the in-process sandbox and inline steps, with live progress.

The first run syncs the demo account from the first day of the previous month to today, so
the reports have two months of sales to show; each later one moves the account on a little
first, so the run is incremental and makes far fewer Tiny calls. `--serve` then serves the
web UI on the same database and the same in-process account (`cli/demo_serve.py`).
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute

from cli.console import console, guarded, load_settings, print_summary
from cli.database import for_writing
from cli.progress import drive
from cli.wiring import shared_sandbox
from core.companies import add_company
from core.models import Company, Payable, Receivable, SalesOrder, SalesOrderItem, StockItem, SyncRun
from core.runs import Mode, RunStatus, create_run, start_run
from core.services import Services
from core.settings import Settings
from core.tiny import today_in_brasilia

DEMO_TOKEN = "demo-token-0001"
DEMO_COMPANY = "Demo Comércio Ltda"
#: What `record_counts` counts: a label, the table's company column, and any further filter.
#: Open bills are the two situacoes the open-bill modules keep (`aberto`, `parcial`), so the
#: rows add up to those modules' counts.
COUNTED: tuple[tuple[str, InstrumentedAttribute[str], ColumnElement[bool] | None], ...] = (
    ("sales orders", SalesOrder.companyId, None),
    ("sales order items", SalesOrderItem.companyId, None),
    ("payables (open)", Payable.companyId, Payable.situacao == "aberto"),
    ("payables (partly paid)", Payable.companyId, Payable.situacao == "parcial"),
    ("payables (paid)", Payable.companyId, Payable.situacao == "pago"),
    ("receivables (open)", Receivable.companyId, Receivable.situacao == "aberto"),
    ("receivables (partly paid)", Receivable.companyId, Receivable.situacao == "parcial"),
    ("receivables (received)", Receivable.companyId, Receivable.situacao == "pago"),
    ("products with stock", StockItem.companyId, None),
)


def first_of_previous_month(today: date) -> date:
    """The first day of the month before `today`'s."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def demo_settings() -> Settings:
    """The demo's settings: the environment's, with the sandbox, inline steps and a fast pace."""
    overrides: dict[str, Any] = {"tiny_api_url": "sandbox"}
    if not os.environ.get("TINY_MIN_INTERVAL") and not os.environ.get("TINY_MIN_INTERVAL_MS"):
        overrides["tiny_min_interval_ms"] = 20  # the sandbox allows it; real Tiny does not
    return load_settings().with_(**overrides, celery_broker_url=None, redis_url=None)


def demo(
    orders: int = typer.Option(500, help="Orders in the demo account (over a year)."),
    serve: bool = typer.Option(
        False, "--serve", help="Then serve the web UI on the demo's data and print a sign-in link."
    ),
    port: int = typer.Option(8000, help="The web UI's port, with --serve."),
    host: str = typer.Option("127.0.0.1", help="The web UI's address, with --serve."),
) -> None:
    """Embedded demo: SQLite + in-process sandbox + inline steps, with live progress."""
    from sandbox import AccountSpec

    settings = demo_settings()
    sandbox = shared_sandbox()
    sandbox.add_account(
        DEMO_TOKEN,
        AccountSpec(
            orders=orders,
            days=365,
            products=40,
            payables=120,
            receivables=120,
            rate_limit_calls=60,
            rate_limit_window_seconds=1.0,
        ),
    )
    services = for_writing(settings)
    with services.session_factory() as session:
        company = session.scalars(select(Company).where(Company.name == DEMO_COMPANY)).first()
        if company is None:
            company = add_company(session, settings, name=DEMO_COMPANY, token=DEMO_TOKEN)
            session.commit()
        runs = list(
            session.scalars(
                select(SyncRun)
                .where(SyncRun.companyId == company.id, SyncRun.status == RunStatus.DONE)
                .order_by(SyncRun.createdAt.asc())
            )
        )
        company_id = company.id
    first, previous = (runs[0], runs[-1]) if runs else (None, None)
    today = today_in_brasilia()
    start = first_of_previous_month(today)
    if previous is not None:
        sandbox.evolve(DEMO_TOKEN, new_orders=3, status_changes=3, payments=3)
        console.print(
            "[bold]Incremental run[/bold]: the demo account moved on since the last run "
            "(3 new orders, 3 status changes, 3 payments)."
        )
        run_settings = settings
    else:
        console.print(
            f"[bold]First run[/bold] for {DEMO_COMPANY} ({settings.database_url}): "
            f"{start:%d/%m/%Y} to {today:%d/%m/%Y}, this month and the previous one."
        )
        # An incremental run whose window reaches back to `start`: it sets the watermarks,
        # so the next run asks Tiny only for what changed.
        run_settings = settings.with_(sync_incremental_days=(today - start).days)
    with services.session_factory() as session:
        run = guarded(
            create_run, session, run_settings, company_id=company_id, mode=Mode.INCREMENTAL
        )
        start_run(session, run.id)
    status = drive(services, run.id)
    print_summary(status)
    console.print(record_counts(services, company_id))
    console.print(calls_line(status["tinyCalls"], previous, first), highlight=False)
    services.close()
    if status["status"] != RunStatus.DONE:
        raise typer.Exit(1)
    if serve:
        from cli.demo_serve import serve_demo

        serve_demo(settings, company_id, host=host, port=port, month=_month_to_show(today))


def calls_line(calls: int, previous: SyncRun | None, first: SyncRun | None) -> str:
    """What the run cost in Tiny calls, against the run before it and the first one."""
    if previous is None or first is None:
        return (
            f"This run made [bold]{calls}[/bold] Tiny calls. Run the demo again for an "
            "incremental run that makes far fewer."
        )
    line = f"This incremental run made [bold]{calls}[/bold] Tiny calls; "
    if previous.id == first.id:
        return line + f"the first run made {first.tinyCalls}."
    return line + f"the previous run made {previous.tinyCalls}, the first {first.tinyCalls}."


def _month_to_show(today: date) -> str:
    """The month the reports open on: this one, or the previous while this one is young."""
    shown = today if today.day >= 8 else first_of_previous_month(today)
    return f"{shown:%Y-%m}"


def record_counts(services: Services, company_id: str) -> Table:
    """How many rows of each synced table belong to the company."""
    table = Table(title="records in the local database")
    table.add_column("table")
    table.add_column("records", justify="right")
    with services.session_factory() as session:
        for label, company_column, where in COUNTED:
            stmt = select(func.count()).where(company_column == company_id)
            if where is not None:
                stmt = stmt.where(where)
            table.add_row(label, str(session.scalar(stmt)))
    return table
