"""The UI under a real browser: the app served on a loopback port, Debian's Chromium driving it.

The app is the real one (`api.create_app`) on a temp SQLite with the in-process sandbox, served
by werkzeug in a thread. Tiny calls are paced (`tiny_min_interval_ms`) so a run lasts a few
seconds and a test can watch modules move, cancel one mid-run, or reload the page under it.
Without Chromium these tests skip on a laptop and fail in CI.
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

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from core.db import make_engine
from core.migrate import upgrade
from core.reports import month_of, today_in_brazil
from core.services import Services
from sandbox import Sandbox
from tests.conftest import (
    fast_spec,
    make_services,
    make_settings,
    new_company,
    step_until_done,
    unavailable,
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright, headless, for the whole session."""
    if not Path(CHROMIUM).exists():
        unavailable("Chromium", f"{CHROMIUM} does not exist (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable("Playwright", exc)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


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
    url = f"sqlite:///{directory / 'ui.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
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


@pytest.fixture
def live_app(tmp_path: Path, browser: Any) -> Iterator[LiveApp]:
    """The app with the inline executor: the page drives the run through `step`."""
    with running_app(tmp_path / "inline") as app:
        yield app


def _worker_thread(services: Services, run_id: str) -> None:
    # Stands in for the Celery chain: executes the run in the background, off any request.
    threading.Thread(
        target=step_until_done, args=(services, run_id), name="fake-worker", daemon=True
    ).start()


@pytest.fixture
def celery_app(tmp_path: Path, browser: Any) -> Iterator[LiveApp]:
    """The app with the Celery executor; a thread plays the worker the run is handed to."""
    with running_app(
        tmp_path / "celery", enqueue=_worker_thread, celery_broker_url="memory://"
    ) as app:
        yield app


@pytest.fixture
def page(browser: Any, live_app: LiveApp) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; console errors fail the test."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="pt-BR", timezone_id="America/Sao_Paulo"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
