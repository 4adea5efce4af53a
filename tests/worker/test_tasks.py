"""The module tasks, the finaliser and the reaper on a real Celery worker thread
(`celery.contrib.testing.worker.start_worker`), with the sandbox in-process."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import update

from core.models import SyncRun, utcnow
from core.modules import MODULE_KEYS
from core.runs import cancel_run, create_run, get_run, start_run
from core.services import Services
from sandbox import Sandbox
from tests.support.deployment import account
from tests.support.processes import RedisServer
from tests.support.services import make_services, make_settings, new_company
from worker import TinySyncCelery, celery_init_app, enqueue_run
from worker.reaper import reap_stale_runs


@dataclass
class Embedded:
    """A Celery app with a worker thread, the services it uses and the sandbox behind them."""

    celery: TinySyncCelery
    services: Services
    sandbox: Sandbox

    def started_run(self, token: str, **spec: Any) -> tuple[str, str]:
        """A company for a fresh account and a started incremental run; (company, run)."""
        company = new_company(self.services, self.sandbox, token, account(**spec))
        with self.services.session_factory() as session:
            run = create_run(
                session, self.services.settings, company_id=company, mode="incremental"
            )
            start_run(session, run.id)
        return company, run.id

    def run(self, run_id: str) -> SyncRun:
        """The run, fresh from the database."""
        with self.services.session_factory() as session:
            return get_run(session, run_id)


@contextmanager
def _app(
    db_url: str, sandbox: Sandbox, redis_server: RedisServer, **settings: Any
) -> Iterator[Embedded]:
    """The app on the private Redis (DB 1, results in DB 2), with the sandbox in-process."""
    for db in (1, 2):
        redis.Redis.from_url(redis_server.url(db)).flushdb()
    services = make_services(
        make_settings(db_url, celery_broker_url=redis_server.url(1), **settings), sandbox
    )
    celery = celery_init_app(services.settings, lambda: services)
    # A result backend only here, so a test can wait for a chain's finaliser.
    celery.conf.update(result_backend=redis_server.url(2), task_ignore_result=False)
    try:
        yield Embedded(celery, services, sandbox)
    finally:
        gc.collect()  # a chain's result unsubscribes when collected: now, while Redis is up
        services.close()


@pytest.fixture
def app_only(db_url: str, sandbox: Sandbox, redis_server: RedisServer) -> Iterator[Embedded]:
    """The app for each database; no worker."""
    with _app(db_url, sandbox, redis_server) as app:
        yield app


@pytest.fixture
def embedded(app_only: Embedded) -> Iterator[Embedded]:
    """The app with a worker thread."""
    with start_worker(app_only.celery, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield app_only


def _truth_orders(sandbox: Sandbox, token: str) -> int:
    today = date.today()
    return len(sandbox.truth(token, today - timedelta(days=30), today).orders)


def test_a_chain_runs_every_module_in_run_order_then_finalizes_the_run(embedded):
    _, run_id = embedded.started_run("tok-chain", orders=150)
    assert enqueue_run(embedded.celery, run_id).get(timeout=30)["status"] == "DONE"
    run = embedded.run(run_id)
    assert {m["status"] for m in run.progressJson["modules"].values()} == {"done"}
    assert run.progressJson["modules"]["vw_vendas"]["processed"] == _truth_orders(
        embedded.sandbox, "tok-chain"
    )


def test_a_failed_module_is_recorded_and_the_next_modules_still_run(embedded):
    _, run_id = embedded.started_run("tok-broken")
    embedded.sandbox.fail_service("tok-broken", "contas.receber.pesquisa.php", 8)
    assert enqueue_run(embedded.celery, run_id).get(timeout=30)["status"] == "FAILED"
    run = embedded.run(run_id)
    statuses = {k: m["status"] for k, m in run.progressJson["modules"].items()}
    assert statuses["vw_contas_receber_posicao"] == "failed"
    assert statuses["vw_contas_recebidas"] == "failed"
    assert statuses["vw_estoque"] == "done"  # after the failed ones, still ran
    assert "Contas a receber (posição)" in run.errorMessage


def test_a_run_sent_twice_is_executed_once(embedded):
    _, run_id = embedded.started_run("tok-twice", orders=250)
    first = enqueue_run(embedded.celery, run_id)
    second = enqueue_run(embedded.celery, run_id)
    assert first.get(timeout=30)["status"] == second.get(timeout=30)["status"] == "DONE"
    orders = _truth_orders(embedded.sandbox, "tok-twice")
    counters = embedded.sandbox.counters("tok-twice")
    # Each page once per pass; a multi-page listing gets a second pass to confirm nothing
    # moved ("two passes agree", core.modules.paging), so twice the pages, not more.
    pages = -(-orders // 100)
    assert counters.per_service["pedidos.pesquisa.php"] == (2 * pages if pages > 1 else 1)
    assert counters.per_service["pedido.obter.php"] == orders
    assert embedded.run(run_id).progressJson["modules"]["vw_vendas"]["processed"] == orders


def test_the_tasks_of_a_canceled_run_make_no_tiny_call(embedded):
    _, run_id = embedded.started_run("tok-canceled")
    with embedded.services.session_factory() as session:
        cancel_run(session, run_id)
    assert enqueue_run(embedded.celery, run_id).get(timeout=30)["status"] == "CANCELED"
    assert embedded.sandbox.counters("tok-canceled").calls == 0


def _stall(embedded: Embedded, run_id: str, **values: Any) -> None:
    """Make the run look stopped: no move for a minute, plus the given columns."""
    long_ago = utcnow() - timedelta(minutes=1)
    with embedded.services.session_factory() as session:
        session.execute(
            update(SyncRun).where(SyncRun.id == run_id).values(updatedAt=long_ago, **values)
        )
        session.commit()


def test_the_reaper_sends_again_a_run_whose_executor_died_and_it_resumes_to_done(embedded):
    _, run_id = embedded.started_run("tok-dead")
    past = utcnow() - timedelta(seconds=5)
    _stall(embedded, run_id, leaseOwner="dead-host:1:0", leaseExpiresAt=past)
    assert reap_stale_runs(embedded.celery) == [run_id]
    messages = _wait_done_and_log(embedded, run_id)
    assert any("o executor parou de responder" in m for m in messages)
    assert any(m.startswith("Vendas retomado") for m in messages)


def test_the_reaper_sends_again_a_run_whose_next_message_was_lost(embedded):
    _, run_id = embedded.started_run("tok-lost")
    _stall(embedded, run_id)  # started, but its chain never reached a worker
    assert reap_stale_runs(embedded.celery) == [run_id]
    messages = _wait_done_and_log(embedded, run_id)
    assert any("mensagem perdida" in m for m in messages)


def test_two_reapers_send_a_stalled_run_once(app_only):
    _, run_id = app_only.started_run("tok-two-reapers")
    _stall(app_only, run_id)
    assert reap_stale_runs(app_only.celery) == [run_id]
    assert reap_stale_runs(app_only.celery) == []


def test_the_reaper_leaves_moving_runs_alone(app_only):
    _, moving = app_only.started_run("tok-moving")
    _, held = app_only.started_run("tok-held")
    future = utcnow() + timedelta(seconds=30)
    _stall(app_only, held, leaseOwner="busy-host:1:0", leaseExpiresAt=future)
    assert reap_stale_runs(app_only.celery) == []
    assert app_only.run(moving).status == app_only.run(held).status == "RUNNING"


def _wait_done_and_log(embedded: Embedded, run_id: str) -> list[str]:
    import time

    deadline = time.monotonic() + 30
    while embedded.run(run_id).status == "RUNNING":
        assert time.monotonic() < deadline, "the re-sent run did not finish"
        time.sleep(0.05)
    assert embedded.run(run_id).status == "DONE"
    assert {m["status"] for m in embedded.run(run_id).progressJson["modules"].values()} == {"done"}
    return _log(embedded, run_id)


def _log(embedded: Embedded, run_id: str) -> list[str]:
    from core.runs import list_logs

    with embedded.services.session_factory() as session:
        logs, _ = list_logs(session, run_id, limit=500)
    return [entry.message for entry in logs]


def test_every_module_is_sent_in_run_order(embedded):
    _, run_id = embedded.started_run("tok-order")
    enqueue_run(embedded.celery, run_id).get(timeout=30)
    _wait_done_and_log(embedded, run_id)
    modules = embedded.run(run_id).progressJson["modules"]
    started = sorted(MODULE_KEYS, key=lambda key: modules[key]["startedAt"])
    assert started == list(MODULE_KEYS)


def test_a_tiny_back_off_longer_than_a_slice_frees_the_worker_and_the_task_comes_back(
    sqlite_url, sandbox, redis_server
):
    pausing = dict(
        tiny_max_retries=10, tiny_rate_limit_backoff_seconds=0.6, sync_step_budget_seconds=0.3
    )
    tight = dict(orders=30, products=3, rate_limit_calls=3, rate_limit_window_seconds=0.5)
    with _app(sqlite_url, sandbox, redis_server, **pausing) as app:
        _, run_id = app.started_run("tok-pause", **tight)
        with start_worker(app.celery, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            assert enqueue_run(app.celery, run_id).get(timeout=60)["status"] == "DONE"
        messages = _log(app, run_id)
    assert any("aguardando o limite do Tiny" in m and "código 6" in m for m in messages)
    assert not any("reaper" in m for m in messages)  # the task itself came back


def test_a_module_longer_than_a_slice_hands_the_thread_to_a_run_started_after_it(
    sqlite_url, sandbox, redis_server
):
    # One thread (the solo pool) and a long module: its slices end and queue again behind
    # the later run's first task, which starts while the long module is still going.
    slicing = dict(tiny_min_interval_ms=10, sync_task_slice_seconds=0.3)
    with _app(sqlite_url, sandbox, redis_server, **slicing) as app:
        _, long_run = app.started_run("tok-slice-long", orders=300)
        _, short_run = app.started_run("tok-slice-short", orders=5)
        with start_worker(app.celery, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            finished_long = enqueue_run(app.celery, long_run)
            finished_short = enqueue_run(app.celery, short_run)
            assert finished_short.get(timeout=60)["status"] == "DONE"
            assert finished_long.get(timeout=90)["status"] == "DONE"
        long_sales = app.run(long_run).progressJson["modules"]["vw_vendas"]
        short_sales = app.run(short_run).progressJson["modules"]["vw_vendas"]
    assert short_sales["startedAt"] < long_sales["finishedAt"]
    # Handed back and resumed many times, the long module still read every order once.
    assert long_sales["processed"] == _truth_orders(sandbox, "tok-slice-long")
    assert (
        sandbox.counters("tok-slice-long").per_service["pedido.obter.php"]
        == long_sales["processed"]
    )
