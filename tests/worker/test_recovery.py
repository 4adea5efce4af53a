"""Crash-proof runs: a worker killed with SIGKILL or the broker's Redis restarted mid-run, and
a module past its time limit.

The crashes use a short SYNC_LEASE_SECONDS and a reaper every second, so the time to recover
(a lease plus a reaper tick plus a worker's start) stays within seconds.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import pytest
from werkzeug.serving import make_server

from core.modules import vw_vendas
from sandbox import Sandbox
from sandbox.services import canonical_service
from tests.support.deployment import Deployment, account, assert_synced, last_month
from tests.support.processes import wait_until

FAST_RECOVERY = dict(SYNC_LEASE_SECONDS="3", SYNC_REAPER_INTERVAL_SECONDS="1")


def _mid_module(d: Deployment, run_id: str) -> None:
    """Wait until vw_vendas has committed pages and is still running."""

    def midway() -> bool:
        entry = d.run(run_id).progressJson["modules"]["vw_vendas"]
        return entry["status"] == "running" and entry.get("processed", 0) >= 100

    wait_until(midway, 30, "vw_vendas half-way")


@pytest.mark.parametrize("victim", ["the whole worker", "a prefork pool process"])
def test_a_worker_killed_mid_module_is_resumed_and_nothing_is_lost_or_doubled(
    deploy, token, victim
):
    d: Deployment = deploy(TINY_MIN_INTERVAL="8", **FAST_RECOVERY)
    d.beat()
    # The documented worker is one process of threads; `--pool prefork` is still offered.
    first = d.worker("first", pool="prefork" if "prefork" in victim else "threads")
    company = d.company(token, account(orders=500))
    month, first_day, last_day = last_month()
    run_id = d.start(company, month=month)
    _mid_module(d, run_id)

    if victim == "the whole worker":
        first.kill(signal.SIGKILL)  # main and pool process: no goodbye, the message unacked
        d.worker("second")
    else:
        # The main process sees its pool process lost and puts the message back
        # (task_reject_on_worker_lost); the pool starts a new process.
        (pool_process,) = psutil.Process(first.process.pid).children()
        pool_process.kill()
    # How fast recovery is (a lease, a reaper tick, a worker's start) is the benchmarks'
    # business; here it must happen, within a bound a loaded machine also keeps.
    run = d.wait_finished(run_id, timeout=180)

    assert run.status == "DONE", (run.errorMessage, d.processes_output())
    truth = d.sandbox.truth(token, first_day, last_day)
    assert_synced(d.services, company, truth)
    assert run.progressJson["modules"]["vw_vendas"]["processed"] == len(truth.orders)
    assert run.resumeCount >= 1
    messages = d.logs(run_id)
    assert any(m.startswith("Vendas retomado do ponto salvo") for m in messages), messages
    assert any("o executor parou de responder" in m for m in messages)


def test_a_run_ends_done_when_redis_restarts_in_the_middle(deploy, token, redis_server):
    d: Deployment = deploy(TINY_MIN_INTERVAL="8", **FAST_RECOVERY)
    d.beat()
    d.worker()
    company = d.company(token, account(orders=500))
    month, first_day, last_day = last_month()
    run_id = d.start(company, month=month)
    _mid_module(d, run_id)

    redis_server.restart(down_seconds=1.0)  # no persistence: queues and unacked messages gone

    run = d.wait_finished(run_id, timeout=180)
    assert run.status == "DONE", (run.errorMessage, d.processes_output())
    truth = d.sandbox.truth(token, first_day, last_day)
    assert_synced(d.services, company, truth)
    assert run.progressJson["modules"]["vw_vendas"]["processed"] == len(truth.orders)


def test_a_run_started_while_redis_restarts_waits_for_it_and_ends_done(deploy, token, redis_server):
    d: Deployment = deploy()
    d.worker()
    company = d.company(token, account(orders=20))
    redis_server.stop()
    back = threading.Timer(2.0, redis_server.start)
    back.start()
    try:
        began = time.monotonic()
        run_id = d.start(company)  # the API's `start` does the same: it must not give up
        waited = time.monotonic() - began
    finally:
        back.join()
    assert waited >= 1.5
    assert d.wait_finished(run_id, timeout=60).status == "DONE", d.processes_output()


def test_a_worker_busy_and_waiting_for_messages_survives_a_redis_restart(
    deploy, token, redis_server
):
    # One pool process runs a module (its message unacked) while the other waits on the
    # queue: the case where Celery's own consumer stopped the worker (worker/consumer.py).
    d: Deployment = deploy(TINY_MIN_INTERVAL="8", **FAST_RECOVERY)
    d.beat()
    worker = d.worker(concurrency=2)
    company = d.company(token, account(orders=500))
    month, _, _ = last_month()
    run_id = d.start(company, month=month)
    _mid_module(d, run_id)

    redis_server.restart(down_seconds=1.0)
    worker.wait_for("Connected to redis", timeout=30)  # once at start, …
    wait_until(lambda: worker.output.count("Connected to redis") >= 2, 30, "a reconnection")
    later = d.start(d.company(token + "-later", account(orders=20)))

    assert d.wait_finished(later, timeout=60).status == "DONE", d.processes_output()
    assert d.wait_finished(run_id, timeout=60).status == "DONE", d.processes_output()
    assert worker.process.poll() is None
    assert "Unrecoverable error" not in worker.output


class _HeldService:
    """The sandbox as a WSGI app, with one service's calls held until `release()`.

    A held call stands for a Tiny that stopped answering: the module making it is past any
    time limit however loaded the machine is, while the other modules answer at once.
    """

    def __init__(self, sandbox: Sandbox, service: str):
        self.sandbox = sandbox
        self.service = service
        self.held = threading.Event()
        self._released = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if canonical_service(environ.get("PATH_INFO", "")) == self.service:
            self.held.set()
            self._released.wait(timeout=300)
        return self.sandbox(environ, start_response)

    def release(self) -> None:
        self._released.set()


@contextmanager
def _served(app: _HeldService) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="held-sandbox", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api2"
    finally:
        app.release()
        server.shutdown()
        server.server_close()


def test_a_module_past_its_soft_time_limit_fails_and_the_next_modules_still_run(
    deploy, token, http_sandbox
):
    # The thread pool has no signal to cut the task: the limit bounds its Tiny call instead
    # (worker/timelimit.py), and the module fails under the same name as in a prefork pool.
    held = _HeldService(http_sandbox.sandbox, vw_vendas.LIST_SERVICE)
    with _served(held) as url:
        # The soft limit only has to outlast the other modules' few calls, each answered at
        # once; the hard one kills the process if the soft one were not honoured.
        d: Deployment = deploy(
            TINY_API_URL=url,
            TINY_TIMEOUT_SECONDS="600",
            SYNC_MODULE_SOFT_TIME_LIMIT_SECONDS="3",
            SYNC_MODULE_TIME_LIMIT_SECONDS="120",
        )
        d.worker()
        company = d.company(token, account(orders=30, products=3))
        run_id = d.start(company)
        wait_until(held.held.is_set, 60, "vw_vendas listing")
        run = d.wait_finished(run_id, timeout=120)
    modules = {k: m["status"] for k, m in run.progressJson["modules"].items()}
    assert modules["vw_vendas"] == "failed", (modules, d.processes_output())
    assert modules["vw_contas_receber_posicao"] == modules["vw_contas_pagar"] == "done", modules
    assert run.status == "FAILED"
    assert run.errorMessage == "1 módulo falhou: Vendas. Detalhes na página da execução."
    assert "SoftTimeLimitExceeded" in run.progressJson["modules"]["vw_vendas"]["errors"][-1]
