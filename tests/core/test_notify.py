"""Signed failure notifications: a receiver on 127.0.0.1 gets a FAILED run's JSON with a valid
HMAC signature, after retries; a receiver that is down never delays or fails the run."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from api import create_app
from core.models import SyncRun, SyncRunLog, utcnow
from core.modules.base import ModuleContext
from core.runs import cancel_run, create_run, fail_run, notifier, start_run
from core.steps import run_step
from tests.support.api import AUTH, SYNC, api_settings
from tests.support.processes import free_port, wait_until
from tests.support.services import make_services, new_company

ROOT = Path(__file__).resolve().parents[2]
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
    wait_until(lambda: any("entregue" in m for m in _logs(services, run_id)), 10, "delivery")
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
        "needsReconnect",
    }
    assert (sent["event"], sent["runId"], sent["status"]) == ("run.failed", run_id, "FAILED")
    assert sent["companyName"] == "Company tok-hook"
    assert "the test module broke" in sent["modules"][KEY]["errors"][-1]
    assert sent["modules"][KEY]["status"] == "failed"
    assert any(
        m.startswith("notificação entregue a 127.0.0.1") and "tentativa 3" in m
        for m in _logs(services, run_id)
    )
    assert not any(hook.url in m for m in _logs(services, run_id))  # the host only


def test_a_receiver_that_is_down_never_delays_the_run_and_is_logged(services, sandbox):
    down = f"http://127.0.0.1:{free_port()}/nobody"
    settings = services.settings.with_(
        notify_webhook_url=down,
        notify_webhook_secret=SECRET,
        notify_retry_base_seconds=1.0,
        notify_max_attempts=3,
    )
    run_id, (result, _) = _run(services, sandbox, "tok-down", Breaks(), settings)
    assert result.status == "FAILED"
    # The step has answered while the delivery still waits out its back-off (1 + 2 s): the
    # retries happen in the background, never in the run's way.
    assert not _no_delivery_in_flight()
    assert not any("notificação" in m for m in _logs(services, run_id))
    gave_up = lambda: any("não entregue" in m for m in _logs(services, run_id))  # noqa: E731
    wait_until(gave_up, 30, "giving up")
    line = next(m for m in _logs(services, run_id) if "não entregue" in m)
    assert line.startswith("notificação para 127.0.0.1:") and "após 3 tentativa(s)" in line


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
    assert not any("notificação" in m for m in _logs(services, run_id))


def _started(services, sandbox, token: str, settings) -> str:
    company = new_company(services, sandbox, token)
    with services.session_factory() as session:
        run = create_run(
            session, settings, company_id=company, mode="incremental", modules=[Fine.key]
        )
        start_run(session, run.id)
        return run.id


def _age(services, run_id: str, **columns: Any) -> None:
    with services.session_factory() as session:
        session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**columns))
        session.commit()


def _recreate(services, settings, run_id: str) -> None:
    """A new create for the run's company: it gives up the stuck run first."""
    with services.session_factory() as session:
        company_id = session.get(SyncRun, run_id).companyId
        create_run(session, settings, company_id=company_id, mode="incremental", modules=[Fine.key])


@pytest.mark.parametrize(
    "ending, status",
    [
        ("canceled", "CANCELED"),
        ("failed", "FAILED"),
        ("expired while queued", "CANCELED"),
        ("expired while abandoned", "FAILED"),
    ],
)
def test_every_way_a_run_ends_goes_through_the_one_notification_hook(
    services, sandbox, receiver, ending, status
):
    hook = receiver([])
    settings = services.settings.with_(
        notify_webhook_url=hook.url, notify_webhook_secret=SECRET, notify_on="all"
    )
    run_id = _started(services, sandbox, "tok-end-" + ending.replace(" ", "-"), settings)
    on_finish = notifier(services.session_factory, settings)
    with services.session_factory() as session:
        if ending == "canceled":
            cancel_run(session, run_id, on_finish=on_finish)
            cancel_run(session, run_id, on_finish=on_finish)  # already over: not sent again
        elif ending == "failed":
            fail_run(session, run_id, "o executor desistiu", on_finish=on_finish)
    if ending == "expired while queued":
        _age(services, run_id, status="QUEUED", createdAt=utcnow() - timedelta(hours=2))
        _recreate(services, settings, run_id)
    elif ending == "expired while abandoned":
        _age(services, run_id, updatedAt=utcnow() - timedelta(days=2))
        _recreate(services, settings, run_id)
    wait_until(_no_delivery_in_flight, 10, "every notification thread to end")
    sent = [json.loads(body) for _, body in hook.received]
    assert [(s["runId"], s["status"]) for s in sent] == [(run_id, status)]
    assert sum("notificação entregue" in m for m in _logs(services, run_id)) == 1


def test_a_cancel_through_the_api_is_notified_once_with_notify_on_all(db_url, sandbox, receiver):
    hook = receiver([])
    settings = api_settings(
        db_url, notify_webhook_url=hook.url, notify_webhook_secret=SECRET, notify_on="all"
    )
    services = make_services(settings, sandbox)
    try:
        client = create_app(services=services).test_client()
        run_id = _started(services, sandbox, "tok-api-cancel", settings)
        for _ in range(2):  # the second cancel finds it over: answered, not sent again
            answer = client.post(f"{SYNC}/cancel", json={"runId": run_id}, headers=AUTH)
            assert answer.status_code == 200, answer.get_data(True)
        wait_until(_no_delivery_in_flight, 10, "every notification thread to end")
    finally:
        services.close()
    sent = [json.loads(body) for _, body in hook.received]
    assert [(s["runId"], s["event"], s["status"]) for s in sent] == [
        (run_id, "run.finished", "CANCELED")
    ]


EXITS_AT_ONCE = """
import sys
from core.runs import create_run, fail_run, notifier, start_run
from tests.support.services import make_services, make_settings, new_company
from sandbox import Sandbox

url, secret, db_url = sys.argv[1:4]
settings = make_settings(db_url, notify_webhook_url=url, notify_webhook_secret=secret,
                         notify_retry_base_seconds=0.2)
sandbox = Sandbox()
services = make_services(settings, sandbox)
company = new_company(services, sandbox, "tok-exit")
with services.session_factory() as session:
    run = create_run(session, settings, company_id=company, mode="incremental", modules=["x"])
    start_run(session, run.id)
    fail_run(session, run.id, "o executor desistiu", on_finish=notifier(session, settings))
print(run.id)
"""


def test_a_process_that_ends_right_after_a_failure_still_delivers_it(db_url, receiver):
    # A CLI sync ends as soon as its run does; the delivery (here after one refusal and a
    # back-off) must not die with the process.
    hook = receiver([503])
    done = subprocess.run(
        [sys.executable, "-c", EXITS_AT_ONCE, hook.url, SECRET, db_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = done.stdout.strip().splitlines()[-1]
    assert len(hook.received) == 2  # refused once, then delivered, before the process ended
    assert json.loads(hook.received[-1][1])["runId"] == run_id
