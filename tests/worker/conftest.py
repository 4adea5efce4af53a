"""Real parts for the worker's tests: PostgreSQL, a private Redis, the sandbox over HTTP, and
worker, beat and Flower processes started with the `tinysync` CLI, as docker-compose does.

The Redis is a `redis-server` of the test session's own on a free port (the machine's shared
Redis is never flushed or restarted); each test empties it before it starts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
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
from sandbox import AccountSpec, Sandbox, Truth
from tests.conftest import _truncate, fast_spec, unavailable
from worker import TinySyncCelery, celery_init_app, enqueue_run
from worker.testing import Proc, RedisServer, sandbox_over_http, start_beat, start_worker, tinysync
from worker.testing import wait_until as _wait_until

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


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until truthy, or fail the test saying what did not happen."""
    try:
        return _wait_until(condition, timeout, what, interval=0.1)
    except TimeoutError as exc:
        pytest.fail(str(exc))


@dataclass
class HttpSandbox:
    """The session's sandbox and the TINY_API_URL that reaches it."""

    sandbox: Sandbox
    url: str


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
    def worker(self, name: str = "worker", concurrency: int = 1) -> Proc:
        """A `tinysync worker` process, ready."""
        proc = start_worker(self.env, self.workdir, name=name, concurrency=concurrency)
        self.procs.append(proc)
        return proc

    def beat(self, name: str = "beat") -> Proc:
        """A `tinysync beat` process, ticking."""
        proc = start_beat(self.env, self.workdir, name=name)
        self.procs.append(proc)
        return proc

    def flower(self, port: int) -> Proc:
        """A `tinysync flower` process with its API open, serving."""
        env = {**self.env, "FLOWER_UNAUTHENTICATED_API": "true"}
        proc = tinysync("flower", ["flower", f"--port={port}"], env, self.workdir)
        self.procs.append(proc)
        proc.wait_for("Visit me at")
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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for this test session."""
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except (OSError, TimeoutError) as exc:
        unavailable("Redis (redis-server)", exc)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_sandbox() -> Iterator[HttpSandbox]:
    """One sandbox served over HTTP for the session; tests use their own tokens."""
    sb = Sandbox()
    with sandbox_over_http(sb) as url:
        yield HttpSandbox(sb, url)


@pytest.fixture
def token(request: pytest.FixtureRequest) -> str:
    """A Tiny token of this test's own."""
    return f"tok-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def deploy(
    pg_database: str, redis_server: RedisServer, http_sandbox: HttpSandbox, tmp_path: Path
) -> Iterator[Callable[..., Deployment]]:
    """Build a deployment with environment overrides (e.g. SYNC_LEASE_SECONDS="3")."""
    _truncate(pg_database)
    redis.Redis.from_url(redis_server.url(0)).flushdb()
    made: list[Deployment] = []

    def make(**env: str) -> Deployment:
        values = {
            "DATABASE_URL": pg_database,
            "CELERY_BROKER_URL": redis_server.url(0),
            "TINY_API_URL": http_sandbox.url,
            "SECRET_KEY": "worker-tests-secret",
            "SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
            "TINY_MIN_INTERVAL": "0",
            "TINY_CONCURRENCY": "4",
            "TINY_TIMEOUT_SECONDS": "5",
            "TINY_RETRY_BASE_SECONDS": "0.05",
            "TINY_RATE_LIMIT_BACKOFF_SECONDS": "1",
            "TINY_MAX_ENRICH_PER_RUN": "10000",
            "SYNC_LEASE_SECONDS": "30",
            "SYNC_REAPER_INTERVAL_SECONDS": "1",
            "SYNC_BEAT_INTERVAL_MINUTES": "0",
            **env,
        }
        deployment = Deployment(values, tmp_path, http_sandbox.sandbox)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()


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
        for model, open_, paid in (
            (Payable, truth.payables_open, truth.payables_paid),
            (Receivable, truth.receivables_open, truth.receivables_paid),
        ):
            stored = rows(model)
            opened = {b.tinyId: b.valor for b in stored if b.situacao in ("aberto", "parcial")}
            assert opened == {k: v["valor"] for k, v in open_.items()}
            assert {b.tinyId: b.valor for b in stored if b.situacao == "pago"} == {
                k: v["valor"] for k, v in paid.items()
            }
        stock = {s.tinyId: s.saldo for s in rows(StockItem)}
        assert stock == {k: v["saldo"] for k, v in truth.products.items()}
