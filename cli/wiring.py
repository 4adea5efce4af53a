"""The composition root: settings → database → Tiny client → services, and the apps on them.

The one place that puts the in-process sandbox into the Tiny client's transport (when
`TINY_API_URL=sandbox`), and that builds the Flask app and the Celery app from the same
settings. Nothing here runs at import time; flask, celery and the sandbox are imported only
by the functions that need them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from core.services import Services, build_services
from core.settings import Settings, require_secrets

if TYPE_CHECKING:
    from flask import Flask

    from sandbox import Sandbox
    from worker import TinySyncCelery

_SANDBOX: Sandbox | None = None


def shared_sandbox() -> Sandbox:
    """The in-process sandbox of this process (one, so all threads see the same data)."""
    global _SANDBOX
    if _SANDBOX is None:
        from sandbox import Sandbox

        _SANDBOX = Sandbox(auto_accounts=True)
    return _SANDBOX


def build(settings: Settings, *, sandbox: Sandbox | None = None) -> Services:
    """Services for `settings`, with the in-process sandbox when TINY_API_URL=sandbox."""
    transport = None
    if settings.uses_sandbox:
        from sandbox import SandboxTransport

        transport = SandboxTransport(sandbox or shared_sandbox())
    return build_services(settings, transport=transport)


def wsgi_app() -> Flask:
    """The Flask app for gunicorn: `gunicorn 'cli:wsgi_app()'`; with a broker, runs go to Celery."""
    from api import create_app

    settings = require_secrets(Settings.from_env())  # refuses the demo's secrets in production
    services = build(settings)
    enqueue = None
    if settings.executor == "celery":
        from worker import celery_init_app, enqueue_run

        celery = celery_init_app(settings, services_factory=lambda: services)
        enqueue = functools.partial(enqueue_run, celery)
    return create_app(settings, services=services, enqueue=enqueue)


def celery_app(settings: Settings | None = None) -> TinySyncCelery:
    """The Celery app (worker, beat, Flower), built from `settings` or the environment's."""
    from worker import celery_init_app

    chosen = settings or Settings.from_env()
    return celery_init_app(chosen, services_factory=lambda: build(chosen))
