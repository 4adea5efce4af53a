"""`tinysync`: the command line, and the composition root that wires the parts together.

This is the one module that knows every package: it puts the sandbox into the Tiny client's
transport when `TINY_API_URL=sandbox`, and builds the Flask app and the Celery app from the
same settings (`wsgi_app()` for gunicorn, `celery_app()` for the worker and beat).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from core.settings import Settings, SettingsError

app = typer.Typer(help="tinysync: resumable sync runs of Tiny ERP data.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
company_app = typer.Typer(help="Companies and their Tiny tokens.", no_args_is_help=True)
runs_app = typer.Typer(help="Run history.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(company_app, name="company")
app.add_typer(runs_app, name="runs")

console = Console()
err = Console(stderr=True)

DEMO_TOKEN = "demo-token-0001"
DEMO_COMPANY = "Demo Comércio Ltda"

# -- composition ------------------------------------------------------------------------
_SANDBOX: Any = None


def shared_sandbox() -> Any:
    """The in-process sandbox of this process (one, so all threads see the same data)."""
    global _SANDBOX
    if _SANDBOX is None:
        from sandbox import Sandbox

        _SANDBOX = Sandbox(auto_accounts=True)
    return _SANDBOX


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, with a clear message when one is wrong."""
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        fail(str(exc))
        raise  # unreachable; fail() exits


def build(settings: Settings, *, sandbox: Any = None) -> Any:
    """Services for `settings`, with the in-process sandbox when TINY_API_URL=sandbox."""
    from core.services import build_services

    transport = None
    if settings.uses_sandbox:
        from sandbox import SandboxTransport

        transport = SandboxTransport(sandbox or shared_sandbox())
    return build_services(settings, transport=transport)


def wsgi_app() -> Any:
    """The Flask app for gunicorn: `gunicorn 'cli:wsgi_app()'`; with a broker, runs go to Celery."""
    from api import create_app

    settings = Settings.from_env()
    services = build(settings)
    enqueue = None
    if settings.executor == "celery":
        from worker import celery_init_app, enqueue_run

        celery = celery_init_app(settings, services_factory=lambda: services)
        enqueue = functools.partial(enqueue_run, celery)
    return create_app(settings, services=services, enqueue=enqueue)


def celery_app(settings: Settings | None = None) -> Any:
    """The Celery app (worker, beat, Flower), built from `settings` or the environment's."""
    from worker import celery_init_app

    settings = settings or Settings.from_env()
    return celery_init_app(settings, services_factory=lambda: build(settings))


def __getattr__(name: str) -> Any:
    """`cli:celery`, built on first use, for Celery's own command line: `celery -A cli:celery`.

    Celery's `-A` takes an app, not a factory (`-A 'cli:celery_app()'` is refused), and an
    import of this module must not build one.
    """
    if name == "celery":
        celery = globals()["celery"] = celery_app()
        return celery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- helpers ----------------------------------------------------------------------------
def fail(message: str, code: int = 2) -> None:
    """Print one clear line to stderr and exit non-zero."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _upgrade(services: Any) -> None:
    from core.migrate import upgrade

    upgrade(services.engine)


def _guarded(func: Any, *args: Any, **kwargs: Any) -> Any:
    from core.errors import SyncError

    try:
        return func(*args, **kwargs)
    except SyncError as exc:
        extra = f" (active run: {exc.run_id})" if getattr(exc, "run_id", None) else ""
        fail(f"{exc}{extra}")


STATUS_STYLE = {
    "pending": "dim",
    "running": "yellow",
    "done": "green",
    "failed": "red",
    "canceled": "magenta",
}


def _drive(services: Any, run_id: str) -> dict[str, Any]:
    """Step the run to its end in a thread while drawing a live progress bar per module."""
    from api.run_views import run_status
    from core.modules import MODULE_KEYS
    from core.runs import cancel_run
    from core.steps import run_step

    failure: list[BaseException] = []

    def loop() -> None:
        try:
            while True:
                result = run_step(
                    services.session_factory, services.settings, services.client, run_id
                )
                if not result.has_more:
                    return
        except BaseException as exc:  # shown to the user below
            failure.append(exc)

    worker = threading.Thread(target=loop, name=f"run-{run_id[:8]}", daemon=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<28}"),
        BarColumn(bar_width=30),
        TextColumn("{task.completed:>6} processed"),
        TextColumn("{task.fields[state]}"),
        console=console,
    )
    tasks = {key: progress.add_task(key, total=None, state="pending") for key in MODULE_KEYS}
    worker.start()
    try:
        with progress:
            while True:
                with services.session_factory() as session:
                    status = run_status(session, run_id, log_limit=1)
                for key, entry in status["progress"]["modules"].items():
                    state = entry.get("status", "pending")
                    processed = int(entry.get("processed", 0))
                    finished = state in ("done", "failed", "canceled")
                    progress.update(
                        tasks[key],
                        completed=processed,
                        total=max(processed, 1) if finished else None,
                        state=f"[{STATUS_STYLE.get(state, '')}]{state}[/]",
                    )
                if not worker.is_alive():
                    break
                time.sleep(0.2)
    except KeyboardInterrupt:
        with services.session_factory() as session:
            cancel_run(session, run_id, reason="canceled from the command line (Ctrl-C)")
        worker.join(timeout=30)
        err.print("canceled")
    if failure:
        raise failure[0]
    with services.session_factory() as session:
        return run_status(session, run_id, log_limit=5)


def _print_summary(status: dict[str, Any]) -> None:
    table = Table(title=f"run {status['runId']} — {status['status']}")
    for column in ("module", "status", "processed", "skipped", "Tiny calls", "errors"):
        table.add_column(column, justify="right" if column[0] in "pstT" else "left")
    for key, entry in status["progress"]["modules"].items():
        errors = entry.get("errors") or []
        table.add_row(
            key,
            f"[{STATUS_STYLE.get(entry.get('status', ''), '')}]{entry.get('status')}[/]",
            str(entry.get("processed", 0)),
            str(entry.get("skipped", 0)),
            str(entry.get("calls", 0)),
            (errors[-1][:60] if errors else ""),
        )
    console.print(table)
    if status.get("errorMessage"):
        console.print(f"[red]{status['errorMessage']}[/red]", highlight=False)


def _record_counts(services: Any, company_id: str) -> Table:
    from sqlalchemy import func, select

    from core.models import Payable, Receivable, SalesOrder, SalesOrderItem, StockItem

    table = Table(title="records in the local database")
    table.add_column("table")
    table.add_column("records", justify="right")
    with services.session_factory() as session:
        for label, model, extra in (
            ("sales orders", SalesOrder, None),
            ("sales order items", SalesOrderItem, None),
            ("payables (open)", Payable, "aberto"),
            ("payables (paid)", Payable, "pago"),
            ("receivables (open)", Receivable, "aberto"),
            ("receivables (received)", Receivable, "pago"),
            ("products with stock", StockItem, None),
        ):
            stmt = select(func.count()).select_from(model).where(model.companyId == company_id)
            if extra:
                stmt = stmt.where(model.situacao == extra)
            table.add_row(label, str(session.scalar(stmt)))
    return table


# -- commands ---------------------------------------------------------------------------
@app.command()
def demo(
    orders: int = typer.Option(500, help="Orders in the demo account (over a year)."),
) -> None:
    """Embedded demo: SQLite + in-process sandbox + inline steps, with live progress."""
    from sqlalchemy import select

    from core.companies import add_company
    from core.models import Company, SyncRun
    from core.runs import create_run, start_run
    from sandbox import AccountSpec

    settings = load_settings()
    overrides: dict[str, Any] = {"tiny_api_url": "sandbox"}
    import os

    if not os.environ.get("TINY_MIN_INTERVAL") and not os.environ.get("TINY_MIN_INTERVAL_MS"):
        overrides["tiny_min_interval_ms"] = 20  # the sandbox allows it; real Tiny does not
    settings = settings.with_(**overrides, celery_broker_url=None, redis_url=None)
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
    services = build(settings, sandbox=sandbox)
    _upgrade(services)
    with services.session_factory() as session:
        company = session.scalars(select(Company).where(Company.name == DEMO_COMPANY)).first()
        if company is None:
            company = add_company(session, settings, name=DEMO_COMPANY, token=DEMO_TOKEN)
            session.commit()
        previous = session.scalars(
            select(SyncRun)
            .where(SyncRun.companyId == company.id, SyncRun.status == "DONE")
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
        run = _guarded(create_run, session, settings, company_id=company_id, mode="incremental")
        start_run(session, run.id)
    status = _drive(services, run.id)
    _print_summary(status)
    console.print(_record_counts(services, company_id))
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
    if status["status"] != "DONE":
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations to DATABASE_URL."""
    settings = load_settings()
    from core.db import make_engine
    from core.migrate import upgrade

    engine = make_engine(settings)
    upgrade(engine)
    engine.dispose()
    console.print(f"database at head: {_safe_url(settings.database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the engine, not here
        return "(unparsable DATABASE_URL)"


@company_app.command("add")
def company_add(
    name: str = typer.Option(..., help="The company's name."),
    token: str = typer.Option(..., help="Its Tiny API token (stored encrypted)."),
) -> None:
    """Add a company; prints its id."""
    from core.companies import add_company

    settings = load_settings()
    services = _services_for_cli(settings)
    with services.session_factory() as session:
        company = _guarded(add_company, session, settings, name=name, token=token)
        session.commit()
        console.print(company.id)


@company_app.command("list")
def company_list() -> None:
    """List companies (never their tokens)."""
    from core.companies import list_companies

    services = _services_for_cli(load_settings())
    table = Table()
    for column in ("id", "name", "active"):
        table.add_column(column)
    with services.session_factory() as session:
        for company in list_companies(session):
            table.add_row(company.id, company.name, "yes" if company.active else "no")
    console.print(table)


def _services_for_cli(settings: Settings) -> Any:
    services = build(settings)
    _upgrade(services)
    return services


@app.command()
def sync(
    company: str = typer.Option(..., help="The company id."),
    month: str | None = typer.Option(None, help="A month YYYY-MM (default: incremental)."),
) -> None:
    """Sync one company now, inline, with live progress (Ctrl-C cancels the run)."""
    from core.runs import create_run, start_run

    settings = load_settings()
    services = _services_for_cli(settings)
    with services.session_factory() as session:
        run = _guarded(
            create_run,
            session,
            settings,
            company_id=company,
            mode="period" if month else "incremental",
            month=month,
            triggered_by="cli",
        )
        start_run(session, run.id)
    console.print(f"run {run.id}")
    status = _drive(services, run.id)
    _print_summary(status)
    if status["status"] != "DONE":
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list(
    company: str | None = typer.Option(None, help="Only this company's runs."),
    status: str | None = typer.Option(None, help="Only runs in this status."),
    limit: int = typer.Option(20, help="How many."),
) -> None:
    """The latest runs, newest first."""
    from api.run_views import run_summary
    from core.runs import list_runs

    services = _services_for_cli(load_settings())
    table = Table()
    for column in ("id", "company", "mode", "status", "period", "created", "processed", "calls"):
        table.add_column(column)
    with services.session_factory() as session:
        runs, _ = _guarded(list_runs, session, company_id=company, status=status, limit=limit)
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


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="The run id.")) -> None:
    """One run: its modules and its log."""
    from api.run_views import run_status
    from core.runs import list_logs

    services = _services_for_cli(load_settings())
    with services.session_factory() as session:
        status = _guarded(run_status, session, run_id, log_limit=1)
        logs, _ = list_logs(session, run_id, limit=500)
    _print_summary(status)
    for entry in reversed(logs):
        module = f" [{entry.module}]" if entry.module else ""
        console.print(
            f"{entry.timestamp:%Y-%m-%d %H:%M:%S} {entry.level:<5}{module} {entry.message}",
            highlight=False,
        )


@runs_app.command("cancel")
def runs_cancel(run_id: str = typer.Argument(..., help="The run id.")) -> None:
    """Cancel a queued or running run."""
    from core.runs import cancel_run

    services = _services_for_cli(load_settings())
    with services.session_factory() as session:
        run = _guarded(cancel_run, session, run_id, reason="canceled from the command line")
    console.print(f"run {run.id} is {run.status}")


@app.command()
def serve(
    port: int = typer.Option(8000, help="Port."), host: str = typer.Option("127.0.0.1")
) -> None:
    """The HTTP API and web UI (development server; use gunicorn in production)."""
    application = wsgi_app()
    application.run(host=host, port=port, threaded=True)


def _broker_settings(what: str) -> Settings:
    settings = load_settings()
    if not settings.celery_broker_url:
        fail(f"CELERY_BROKER_URL is not set: {what} needs a broker (e.g. redis://...)")
    return settings


@app.command()
def worker(
    concurrency: int = typer.Option(2, help="Worker processes."),
    loglevel: str = typer.Option("info"),
    name: str = typer.Option("tinysync@%h", help="Node name (unique per worker on a host)."),
) -> None:
    """A Celery worker: runs the module tasks, the reaper and the periodic syncs."""
    settings = _broker_settings("the worker")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per Tiny call
    # No mingle or gossip: tinysync uses neither revokes nor worker-to-worker state, and
    # both cost a start-up delay and steady Redis traffic.
    celery_app(settings).worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            f"--hostname={name}",
            "--without-mingle",
            "--without-gossip",
        ]
    )


@app.command()
def beat(
    loglevel: str = typer.Option("info"),
    schedule: str = typer.Option("celerybeat-schedule", help="Where beat keeps its last ticks."),
) -> None:
    """Celery beat: periodic incremental syncs and the reaper of stalled runs."""
    settings = _broker_settings("beat")
    celery_app(settings).start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


@app.command()
def flower(
    port: int = typer.Option(5555, help="Port."), address: str = typer.Option("127.0.0.1")
) -> None:
    """Flower, the web monitor of the workers and their tasks (see docs/worker.md)."""
    settings = _broker_settings("Flower")
    celery_app(settings).start(["flower", f"--port={port}", f"--address={address}"])


@app.command("sandbox")
def sandbox_cmd(
    port: int = typer.Option(8800, help="Port."),
    host: str = typer.Option("127.0.0.1"),
    orders: int = typer.Option(500, help="Orders per account created on first use."),
) -> None:
    """The fake Tiny API v2 as an HTTP server (point TINY_API_URL at http://host:port/api2)."""
    from sandbox import serve as serve_sandbox

    sb = shared_sandbox()
    console.print(f"sandbox on http://{host}:{port}/api2 — tokens are accepted on first use")
    serve_sandbox(sb, host=host, port=port)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
