"""`tinysync demo`: SQLite, the in-process sandbox and inline steps, with live progress.

The first run syncs the demo account; each later one moves the account on a little first, so
the run is incremental and makes far fewer Tiny calls.
"""

from __future__ import annotations

import os
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
from core.runs import RunStatus, create_run, start_run
from core.services import Services

DEMO_TOKEN = "demo-token-0001"
DEMO_COMPANY = "Demo Comércio Ltda"
#: What `record_counts` counts: a label, the table's company column, and any further filter.
COUNTED: tuple[tuple[str, InstrumentedAttribute[str], ColumnElement[bool] | None], ...] = (
    ("sales orders", SalesOrder.companyId, None),
    ("sales order items", SalesOrderItem.companyId, None),
    ("payables (open)", Payable.companyId, Payable.situacao == "aberto"),
    ("payables (paid)", Payable.companyId, Payable.situacao == "pago"),
    ("receivables (open)", Receivable.companyId, Receivable.situacao == "aberto"),
    ("receivables (received)", Receivable.companyId, Receivable.situacao == "pago"),
    ("products with stock", StockItem.companyId, None),
)


def demo(
    orders: int = typer.Option(500, help="Orders in the demo account (over a year)."),
) -> None:
    """Embedded demo: SQLite + in-process sandbox + inline steps, with live progress."""
    from sandbox import AccountSpec

    overrides: dict[str, Any] = {"tiny_api_url": "sandbox"}
    if not os.environ.get("TINY_MIN_INTERVAL") and not os.environ.get("TINY_MIN_INTERVAL_MS"):
        overrides["tiny_min_interval_ms"] = 20  # the sandbox allows it; real Tiny does not
    settings = load_settings().with_(**overrides, celery_broker_url=None, redis_url=None)
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
        previous = session.scalars(
            select(SyncRun)
            .where(SyncRun.companyId == company.id, SyncRun.status == RunStatus.DONE)
            .order_by(SyncRun.createdAt.desc())
        ).first()
        company_id = company.id
    if previous is not None:
        sandbox.evolve(DEMO_TOKEN, new_orders=3, status_changes=3, payments=3)
        console.print(
            "[bold]Incremental run[/bold]: the demo account moved on since the last run "
            "(3 new orders, 3 status changes, 3 payments)."
        )
    else:
        console.print(f"[bold]First run[/bold] for {DEMO_COMPANY} ({settings.database_url}).")
    with services.session_factory() as session:
        run = guarded(create_run, session, settings, company_id=company_id, mode="incremental")
        start_run(session, run.id)
    status = drive(services, run.id)
    print_summary(status)
    console.print(record_counts(services, company_id))
    calls = status["tinyCalls"]
    if previous is not None:
        console.print(
            f"This incremental run made [bold]{calls}[/bold] Tiny calls; "
            f"the first run made {previous.tinyCalls}."
        )
    else:
        console.print(
            f"This run made [bold]{calls}[/bold] Tiny calls. Run the demo again for an "
            "incremental run that makes far fewer."
        )
    services.close()
    if status["status"] != RunStatus.DONE:
        raise typer.Exit(1)


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
