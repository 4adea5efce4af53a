"""The composition root: settings → database → Tiny client → services, and the apps on them.

The one place that puts the in-process sandbox into the Tiny client's transport (when
`TINY_API_URL=sandbox`), and that builds the Flask app and the Celery app from the same
settings. Nothing here runs at import time; flask, celery and the sandbox are imported only
by the functions that need them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import httpx

from core.services import Services, build_services, http_transport
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
    return build_services(settings, transport=_sandbox_transport(settings, sandbox))


def _sandbox_transport(settings: Settings, sandbox: Sandbox | None) -> httpx.BaseTransport | None:
    if not settings.uses_sandbox:
        return None
    from sandbox import SandboxTransport

    return SandboxTransport(sandbox or shared_sandbox())


def build_for_worker(settings: Settings) -> Services:
    """A worker process's services: pools sized for WORKER_CONCURRENCY threads, and Tiny calls
    bounded by their module task's time limit (`worker.timelimit`)."""
    from worker.timelimit import DeadlineTransport

    threads = settings.worker_concurrency
    inner = _sandbox_transport(settings, None) or http_transport(threads)
    return build_services(settings, transport=DeadlineTransport(inner), threads=threads)


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
    return celery_init_app(chosen, services_factory=lambda: build_for_worker(chosen))
