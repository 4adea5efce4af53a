"""The app built through its factory, on each database, with the sandbox as the only fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from core.ratelimit import LocalRateLimiter
from core.services import Services, build_services
from sandbox import Sandbox, SandboxTransport
from tests.support.api import Queue, api_settings, small_account
from tests.support.services import make_services, new_company


@pytest.fixture
def api_services(db_url: str, sandbox: Sandbox) -> Iterator[Services]:
    """Services with the admin token and the cron secret, on each database."""
    svc = make_services(api_settings(db_url), sandbox)
    yield svc
    svc.close()


@pytest.fixture
def app(api_services: Services) -> Flask:
    """The app, inline executor."""
    return create_app(services=api_services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the inline app."""
    return app.test_client()


@pytest.fixture
def company(api_services: Services, sandbox: Sandbox) -> str:
    """A company whose Tiny account is a small sandbox account."""
    return new_company(api_services, sandbox, "tok-api", small_account())


@pytest.fixture
def celery_services(db_url: str, sandbox: Sandbox) -> Iterator[Services]:
    """Services configured for Celery (an in-memory broker URL: nothing listens to it)."""
    settings = api_settings(db_url, celery_broker_url="memory://")
    svc = build_services(
        settings, transport=SandboxTransport(sandbox), limiter=LocalRateLimiter(0, 4)
    )
    yield svc
    svc.close()


@pytest.fixture
def queue() -> Queue:
    """The runs the Celery-mode app enqueued."""
    return Queue()


@pytest.fixture
def celery_client(celery_services: Services, queue: Queue) -> FlaskClient:
    """A test client of the app in Celery mode."""
    return create_app(services=celery_services, enqueue=queue).test_client()
