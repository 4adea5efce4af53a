"""Fixtures for the UI under a real browser: Debian's Chromium under Playwright driving the real
app served on a loopback port (`tests.support.ui`). Without Chromium these tests skip on a
laptop and fail in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.env import unavailable
from tests.support.ui import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LiveApp, running_app, worker_thread


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


@pytest.fixture
def live_app(tmp_path: Path, browser: Any) -> Iterator[LiveApp]:
    """The app with the inline executor: the page drives the run through `step`."""
    with running_app(tmp_path / "inline") as app:
        yield app


@pytest.fixture
def celery_app(tmp_path: Path, browser: Any) -> Iterator[LiveApp]:
    """The app with the Celery executor; a thread plays the worker the run is handed to."""
    with running_app(
        tmp_path / "celery", enqueue=worker_thread, celery_broker_url="memory://"
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
