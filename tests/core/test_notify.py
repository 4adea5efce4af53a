"""Signed failure notifications: a receiver on 127.0.0.1 gets a FAILED run's JSON with a valid
HMAC signature, after retries; a receiver that is down never delays or fails the run."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from core.models import SyncRunLog
from core.modules.base import ModuleContext
from core.runs import create_run, start_run
from core.steps import run_step
from tests.support.processes import free_port, wait_until
from tests.support.services import new_company

SECRET = "webhook-secret-for-tests"
KEY = "vw_breaks"


class Breaks:
    """A module that always crashes, so its run ends FAILED."""

    key = KEY

    def run(self, ctx: ModuleContext) -> bool:
        raise RuntimeError("the test module broke")


class Fine:
    key = "vw_fine"

    def run(self, ctx: ModuleContext) -> bool:
        return True


class Receiver:
    """An HTTP server on 127.0.0.1 that answers the given statuses in turn, then 200."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tinysync"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _run(services, sandbox, token: str, module, settings) -> tuple[str, Any]:
    company = new_company(services, sandbox, token)
    with services.session_factory() as session:
        run = create_run(
            session, settings, company_id=company, mode="incremental", modules=[module.key]
        )
        start_run(session, run.id)
    started = time.monotonic()
    result = run_step(
        services.session_factory, settings, services.client, run.id, modules=(module,)
    )
    return run.id, (result, time.monotonic() - started)


def _no_delivery_in_flight() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("notify-")]


def _logs(services, run_id: str) -> list[str]:
    with services.session_factory() as session:
        return list(session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id)))


def test_a_failed_run_is_posted_signed_after_the_receiver_recovers(services, sandbox, receiver):
    hook = receiver([503, 500])
    settings = services.settings.with_(
        notify_webhook_url=hook.url, notify_webhook_secret=SECRET, notify_retry_base_seconds=0.05
    )
    run_id, (result, _) = _run(services, sandbox, "tok-hook", Breaks(), settings)
    assert result.status == "FAILED"
    wait_until(lambda: any("entregue a" in m for m in _logs(services, run_id)), 10, "delivery")
    assert len(hook.received) == 3  # two refusals, then delivered
    headers, body = hook.received[-1]
    # What a receiver does (README): recompute the HMAC of the raw body and compare.
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Tinysync-Signature"], expected)
    assert abs(int(headers["X-Tinysync-Timestamp"]) - time.time()) < 60
    sent = json.loads(body)
    assert set(sent) == {
        "event",
        "runId",
        "companyId",
        "companyName",
        "status",
        "errorMessage",
        "modules",
        "finishedAt",
    }
    assert (sent["event"], sent["runId"], sent["status"]) == ("run.failed", run_id, "FAILED")
    assert sent["companyName"] == "Company tok-hook"
    assert "the test module broke" in sent["modules"][KEY]["errors"][-1]
    assert sent["modules"][KEY]["status"] == "failed"
    assert any(
        "notificação entregue a 127.0.0.1" in m and "tentativa 3" in m
        for m in _logs(services, run_id)
    )
    assert not any(hook.url in m for m in _logs(services, run_id))  # the host only


def test_a_receiver_that_is_down_never_delays_the_run_and_is_logged(services, sandbox):
    down = f"http://127.0.0.1:{free_port()}/nobody"
    settings = services.settings.with_(
        notify_webhook_url=down,
        notify_webhook_secret=SECRET,
        notify_retry_base_seconds=0.5,
        notify_max_attempts=3,
    )
    run_id, (result, seconds) = _run(services, sandbox, "tok-down", Breaks(), settings)
    assert result.status == "FAILED"
    assert seconds < 1.0  # the retries (0.5 + 1 s) happen in the background
    wait_until(lambda: any("não entregue" in m for m in _logs(services, run_id)), 15, "giving up")
    assert any("após 3 tentativa(s)" in m for m in _logs(services, run_id))


def test_done_runs_are_sent_only_with_notify_on_all(services, sandbox, receiver):
    hook = receiver([])
    base = services.settings.with_(notify_webhook_url=hook.url, notify_webhook_secret=SECRET)
    quiet_id, _ = _run(services, sandbox, "tok-done-1", Fine(), base)
    loud_id, _ = _run(services, sandbox, "tok-done-2", Fine(), base.with_(notify_on="all"))
    wait_until(_no_delivery_in_flight, 10, "every notification thread to end")
    sent = [json.loads(body) for _, body in hook.received]
    assert [(s["runId"], s["event"], s["status"]) for s in sent] == [
        (loud_id, "run.finished", "DONE")
    ]
    assert quiet_id != loud_id


def test_without_a_secret_nothing_is_sent(services, sandbox, receiver):
    hook = receiver([])
    settings = services.settings.with_(notify_webhook_url=hook.url, notify_webhook_secret=None)
    run_id, (result, _) = _run(services, sandbox, "tok-nosecret", Breaks(), settings)
    assert result.status == "FAILED"
    wait_until(_no_delivery_in_flight, 10, "every notification thread to end")
    assert hook.received == []
    assert not any("notification" in m for m in _logs(services, run_id))
