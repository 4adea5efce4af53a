"""The worker tests' deployment: the settings its processes and the test share, the worker, beat
and Flower processes (`tinysync …`, as docker-compose runs them), the sandbox served over HTTP,
and the check that a company's tables hold exactly the sandbox's truth.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.companies import add_company
from core.models import (
    Payable,
    Receivable,
    SalesOrder,
    SalesOrderItem,
    StockItem,
    SyncRun,
    SyncRunLog,
)
from core.runs import RunStatus, create_run, get_run, start_run
from core.services import Services, build_services
from core.settings import Settings
from sandbox import AccountSpec, Sandbox, Truth, make_server
from tests.support.processes import Proc, start_beat, start_flower, start_worker, wait_until
from tests.support.services import fast_spec
from worker import TinySyncCelery, celery_init_app, enqueue_run

ADMIN_TOKEN = "admin-token-for-worker-tests"


def account(**overrides: Any) -> AccountSpec:
    """A small Tiny account whose limits stay out of the way unless a test sets them."""
    small = dict(orders=60, days=75, products=8, payables=20, receivables=20)
    return fast_spec(**{**small, **overrides})


def last_month(today: date | None = None) -> tuple[str, date, date]:
    """The previous calendar month as `YYYY-MM`, its first and its last day."""
    first = (today or date.today()).replace(day=1)
    last = first - timedelta(days=1)
    return f"{last:%Y-%m}", last.replace(day=1), last


@dataclass
class HttpSandbox:
    """The session's sandbox and the TINY_API_URL that reaches it."""

    sandbox: Sandbox
    url: str


@contextmanager
def sandbox_over_http(sandbox: Sandbox) -> Iterator[str]:
    """Serve a sandbox on a free port in a thread; yields its TINY_API_URL."""
    server = make_server(sandbox, port=0)
    thread = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api2"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Deployment:
    """One test's deployment: the settings its processes and the test share, and the processes."""

    env: dict[str, str]
    workdir: Path
    sandbox: Sandbox
    settings: Settings = field(init=False)
    services: Services = field(init=False)
    celery: TinySyncCelery = field(init=False)
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.settings = Settings.from_env(self.env, dotenv=False)
        self.services = build_services(self.settings)
        self.celery = celery_init_app(self.settings, lambda: self.services)

    # -- processes -----------------------------------------------------------------------
    def worker(self, name: str = "worker", concurrency: int = 1, pool: str = "threads") -> Proc:
        """A `tinysync worker` process, ready."""
        proc = start_worker(self.env, self.workdir, name=name, concurrency=concurrency, pool=pool)
        self.procs.append(proc)
        return proc

    def beat(self, name: str = "beat") -> Proc:
        """A `tinysync beat` process, ticking."""
        proc = start_beat(self.env, self.workdir, name=name)
        self.procs.append(proc)
        return proc

    def flower(self, port: int) -> Proc:
        """A `tinysync flower` process with its API open, serving."""
        proc = start_flower(self.env, self.workdir, port)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """Stop every process this deployment started, then release connections."""
        for proc in self.procs:
            proc.stop()
        self.services.close()

    # -- data ----------------------------------------------------------------------------
    def company(self, token: str, spec: AccountSpec | None = None) -> str:
        """A sandbox account for `token` and a company for it; returns the company id."""
        self.sandbox.add_account(token, spec or account())
        with self.services.session_factory() as session:
            company = add_company(session, self.settings, name=f"Company {token}", token=token)
            session.commit()
            return company.id

    def start(self, company_id: str, month: str | None = None) -> str:
        """Create and start a run and send it to the workers, as the API's start does."""
        with self.services.session_factory() as session:
            mode = "period" if month else "incremental"
            run = create_run(session, self.settings, company_id=company_id, mode=mode, month=month)
            start_run(session, run.id)
        enqueue_run(self.celery, run.id)
        return run.id

    def run(self, run_id: str) -> SyncRun:
        """The run, fresh from the database."""
        with self.services.session_factory() as session:
            return get_run(session, run_id)

    def wait_finished(self, run_id: str, timeout: float = 60) -> SyncRun:
        """Wait until the run is DONE, FAILED or CANCELED; returns it."""
        final = {RunStatus.DONE.value, RunStatus.FAILED.value, RunStatus.CANCELED.value}
        wait_until(lambda: self.run(run_id).status in final, timeout, f"run {run_id} finishing")
        return self.run(run_id)

    def logs(self, run_id: str) -> list[str]:
        """The run's log messages, oldest first."""
        with self.services.session_factory() as session:
            return list(
                session.scalars(
                    select(SyncRunLog.message)
                    .where(SyncRunLog.runId == run_id)
                    .order_by(SyncRunLog.timestamp, SyncRunLog.id)
                )
            )

    def processes_output(self) -> str:
        """The tail of every process's output, for failure messages."""
        return "\n".join(f"--- {p.name}\n{p.output[-2000:]}" for p in self.procs)


def assert_synced(services: Services, company_id: str, truth: Truth) -> None:
    """The company's tables hold exactly the sandbox's truth: nothing lost, nothing twice."""
    with services.session_factory() as session:

        def rows(model: Any, *where: Any) -> list[Any]:
            return list(session.scalars(select(model).where(model.companyId == company_id, *where)))

        orders = rows(SalesOrder)
        assert sorted(o.tinyId for o in orders) == sorted(truth.orders)
        for order in orders:
            assert order.valor == truth.orders[order.tinyId]["valor"]
            assert order.situacao == truth.orders[order.tinyId]["situacao"]
        items: dict[int, list[Any]] = {}
        for item in rows(SalesOrderItem):
            items.setdefault(item.orderTinyId, []).append(item)
        for tiny_id, expected in truth.order_items.items():
            got = sorted(items.get(tiny_id, []), key=lambda i: i.position)
            assert [(i.codigo, i.quantidade, i.valorUnitario) for i in got] == [
                (e["codigo"], e["quantidade"], e["valor_unitario"]) for e in expected
            ]
        # The open position is whole (every emission date); paid bills are the window's.
        for model, open_, paid in (
            (Payable, truth.payables_open_all, truth.payables_paid),
            (Receivable, truth.receivables_open_all, truth.receivables_paid),
        ):
            stored = rows(model)
            opened = {b.tinyId: b.valor for b in stored if b.situacao in ("aberto", "parcial")}
            assert opened == {k: v["valor"] for k, v in open_.items()}
            assert {b.tinyId: b.valor for b in stored if b.situacao == "pago"} == {
                k: v["valor"] for k, v in paid.items()
            }
        stock = {s.tinyId: s.saldo for s in rows(StockItem)}
        assert stock == {k: v["saldo"] for k, v in truth.products.items()}
