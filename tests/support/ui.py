"""What the UI tests share: Debian's Chromium and its flags, and the real app (`api.create_app`)
on a temp SQLite with the in-process sandbox, served by werkzeug on a loopback port in a thread.

Tiny calls are paced (`PACING_MS`) so a run lasts a few seconds and a test can watch modules
move, cancel one mid-run, or reload the page under it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from core.reports import month_of, today_in_brazil
from core.services import Services
from sandbox import Sandbox
from tests.support.databases import migrated_sqlite
from tests.support.services import (
    fast_spec,
    make_services,
    make_settings,
    new_company,
    step_until_done,
)

CHROMIUM = os.environ.get("TINYSYNC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_TOKEN = "ui-admin-token-0123456789"
TINY_TOKEN = "tok-ui"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
#: Small enough for a run of a few seconds, big enough to watch it move.
UI_SPEC = dict(orders=150, days=75, products=16, payables=50, receivables=50)
#: Pause between Tiny calls: about 110 calls in a month's run, so about 4 s.
PACING_MS = 35


@dataclass
class LiveApp:
    """The served app and what a test needs to check it against."""

    url: str
    services: Services
    sandbox: Sandbox
    company_id: str
    token: str
    today: date
    month: str
    month_start: date
    month_end: date

    def page_url(self, path: str) -> str:
        return self.url + path


def previous_month(today: date) -> tuple[str, date, date]:
    """The month before `today`'s, its first and last day."""
    last = date(today.year, today.month, 1) - timedelta(days=1)
    first = date(last.year, last.month, 1)
    return month_of(first), first, last


def serve(app: Any) -> tuple[BaseWSGIServer, threading.Thread]:
    """Serve a WSGI app on a free loopback port in a thread (threaded: polls overlap steps)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="ui-server", daemon=True)
    thread.start()
    return server, thread


@contextmanager
def running_app(
    directory: Path, *, enqueue: Callable[[Services, str], None] | None = None, **overrides: Any
) -> Iterator[LiveApp]:
    """The real app on a fresh SQLite and sandbox account, served on 127.0.0.1."""
    from api import create_app

    directory.mkdir(parents=True, exist_ok=True)
    url = migrated_sqlite(directory / "ui.db")
    settings = make_settings(
        url,
        sync_admin_token=ADMIN_TOKEN,
        tiny_min_interval_ms=PACING_MS,
        tiny_concurrency=1,
        sync_step_budget_seconds=1.0,
        **overrides,
    )
    sandbox = Sandbox()
    services = make_services(settings, sandbox)
    company_id = new_company(services, sandbox, TINY_TOKEN, fast_spec(**UI_SPEC))
    hand_over = None if enqueue is None else (lambda run_id: enqueue(services, run_id))
    app = create_app(settings, services=services, enqueue=hand_over)
    server, thread = serve(app)
    today = today_in_brazil()
    month, first, last = previous_month(today)
    try:
        yield LiveApp(
            url=f"http://127.0.0.1:{server.server_port}",
            services=services,
            sandbox=sandbox,
            company_id=company_id,
            token=TINY_TOKEN,
            today=today,
            month=month,
            month_start=first,
            month_end=last,
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)
        services.close()


def worker_thread(services: Services, run_id: str) -> None:
    """Stand in for the Celery chain: execute the run in the background, off any request."""
    threading.Thread(
        target=step_until_done, args=(services, run_id), name="fake-worker", daemon=True
    ).start()
