"""Signed notifications of finished runs: a webhook POST, retried, never in the run's way.

With NOTIFY_WEBHOOK_URL and NOTIFY_WEBHOOK_SECRET set, a run that ends FAILED (with
NOTIFY_ON=all: any run that ends) is POSTed as JSON

    {event, runId, companyId, companyName, status, errorMessage, modules, finishedAt}

with `X-Tinysync-Signature: sha256=<hex HMAC-SHA256 of the raw body under the secret>` and
`X-Tinysync-Timestamp` (Unix seconds). The POST runs in a daemon thread: a receiver that is
slow, down or wrong never delays or fails the run. A connection error, a timeout, 429 or a
5xx is retried with back-off (NOTIFY_RETRY_BASE_SECONDS × 1, 2, 4, …) up to
NOTIFY_MAX_ATTEMPTS; every outcome is a line of the run's log (the receiver's host only,
never its full URL, which may hold a key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from core.models import Company, SyncRun
from core.runs.logs import add_log
from core.runs.model import Progress, RunStatus
from core.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tinysync-Signature"
TIMESTAMP_HEADER = "X-Tinysync-Timestamp"
TIMEOUT_SECONDS = 10.0
FINISHED = (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELED)


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def wanted(settings: Settings, status: str) -> bool:
    """Whether a run that ended in `status` is notified under these settings."""
    if not (settings.notify_webhook_url and settings.notify_webhook_secret):
        return False
    if settings.notify_on.strip().lower() == "all":
        return status in FINISHED
    return status == RunStatus.FAILED


def payload(run: SyncRun, company: Company | None) -> dict[str, Any]:
    """The JSON body for a finished run."""
    progress = Progress.from_json(run.progressJson)
    modules = {
        key: {
            "status": entry.status.value,
            "processed": entry.processed,
            "errors": entry.errors[-3:],
        }
        for key, entry in progress.modules.items()
    }
    return {
        "event": "run.failed" if run.status == RunStatus.FAILED else "run.finished",
        "runId": run.id,
        "companyId": run.companyId,
        "companyName": company.name if company else None,
        "status": run.status,
        "errorMessage": run.errorMessage,
        "modules": modules,
        "finishedAt": run.finishedAt.isoformat() if run.finishedAt else None,
    }


def notify_run_finished(
    session_factory: sessionmaker[Session], settings: Settings, run_id: str
) -> threading.Thread | None:
    """Send the run's notification in the background, if wanted; returns the thread.

    Call it once, from whoever moved the run to its final status. Never raises.
    """
    try:
        with session_factory() as session:
            run = session.get(SyncRun, run_id, populate_existing=True)
            if run is None or not wanted(settings, run.status):
                return None
            body = json.dumps(payload(run, session.get(Company, run.companyId))).encode()
    except Exception:  # a notification must never fail what called it
        log.exception("could not prepare the notification of run %s", run_id)
        return None
    thread = threading.Thread(
        target=_deliver,
        args=(session_factory, settings, run_id, body),
        name=f"notify-{run_id[:8]}",
        daemon=True,
    )
    thread.start()
    return thread


def _deliver(
    session_factory: sessionmaker[Session], settings: Settings, run_id: str, body: bytes
) -> None:
    url = settings.notify_webhook_url or ""
    secret = settings.notify_webhook_secret or ""
    host = urlsplit(url).netloc or "the webhook"
    attempts = max(1, settings.notify_max_attempts)
    outcome = "no answer"
    for attempt in range(1, attempts + 1):
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, secret),
            TIMESTAMP_HEADER: str(int(time.time())),
            "User-Agent": "tinysync-webhook/1",
        }
        try:
            answer = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        else:
            if answer.is_success:
                _log(
                    session_factory,
                    run_id,
                    "info",
                    f"notificação entregue a {host} "
                    f"(HTTP {answer.status_code}, tentativa {attempt})",
                )
                return
            outcome = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break  # the receiver refused it: sending it again would not help
        if attempt < attempts:
            time.sleep(settings.notify_retry_base_seconds * 2 ** (attempt - 1))
    _log(
        session_factory,
        run_id,
        "warn",
        f"notificação para {host} não entregue ({outcome}, após {attempt} tentativa(s))",
    )


def _log(session_factory: sessionmaker[Session], run_id: str, level: str, message: str) -> None:
    try:
        with session_factory() as session:
            add_log(session, run_id, level, message, module=None)
            session.commit()
    except Exception:  # the database is down, or the run was pruned: the Python log has it
        log.warning("run %s: %s", run_id, message)
