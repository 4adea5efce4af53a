"""The Flask app factory: the JSON API of DESIGN.md and the web UI, built from settings.

Production: `gunicorn -w 4 -k gthread --threads 8 --timeout 120 -b 0.0.0.0:8000
'cli:wsgi_app()'` (the CLI wires in the sandbox when `TINY_API_URL=sandbox`, and Celery when
a broker is set). With the inline executor a `step` runs inside its request for up to
SYNC_STEP_BUDGET_SECONDS plus a Tiny rate-limit wait, so `--timeout` must exceed both, and
threads keep the status route answering while steps run.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, request
from sqlalchemy.exc import DBAPIError
from werkzeug.middleware.proxy_fix import ProxyFix

from api import (
    auth,
    routes,
    routes_companies,
    routes_cron,
    routes_ops,
    routes_reports,
    ui,
)
from api.errors import ApiError, register_error_handlers
from api.metrics import Metrics
from api.state import SERVICES_KEY, STATE_KEY, ApiState, Enqueue
from api.throttle import throttle
from core.db import is_outage
from core.errors import ValidationError
from core.services import Services, build_services
from core.settings import Settings

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    enqueue: Enqueue | None = None,
) -> Flask:
    """Build the app; `enqueue(run_id)` hands a started run to Celery when a broker is set."""
    if settings is None:
        settings = services.settings if services is not None else Settings.from_env()
    if services is None:
        if settings.uses_sandbox:
            raise ValueError(
                "TINY_API_URL=sandbox needs the in-process sandbox wired into the Tiny client: "
                "build the app with cli.wsgi_app() (gunicorn 'cli:wsgi_app()')"
            )
        services = build_services(settings)
    elif services.settings != settings:
        raise ValueError("settings differ from services.settings; pass one or the same")

    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SECRET_KEY=auth.session_key(settings.secret_key, settings.sync_admin_token),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_max_hours),
        # Cookies signed under an older SECRET_KEY still read (their server-side session
        # decides whether they count).
        SECRET_KEY_FALLBACKS=[
            auth.session_key(key, settings.sync_admin_token) for key in settings.secret_keys[1:]
        ],
    )
    if settings.trusted_proxies > 0:
        # Behind N proxies that set X-Forwarded-For/-Proto/-Host: the client's address (for
        # throttling) and https (for Secure cookies, redirects) come from them.
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the seed's field order
    app.extensions[SERVICES_KEY] = services
    app.extensions[STATE_KEY] = ApiState(
        services=services,
        enqueue=enqueue,
        metrics=Metrics(services),
        broker=_redis_broker(settings),
    )

    register_error_handlers(app)
    throttle(app, settings)  # before the auth check: a throttled client is not checked again
    auth.protect(app)  # first: nothing about a request is read before it is authorized
    app.before_request(_read_json_body)
    for blueprint in (
        routes.bp,
        routes_companies.bp,
        routes_cron.bp,
        routes_ops.bp,
        routes_reports.bp,
        ui.bp,
    ):
        app.register_blueprint(blueprint)
    _read_again_after_a_cut(app)
    return app


def _read_again_after_a_cut(app: Flask) -> None:
    """Run a read-only route once more when a database restart cut its connection.

    A restart ends every session at once: a status poll that was mid-query then fails,
    though the next connection (which waits for the server, see `core.db`) would answer it.
    A read changed nothing, so running it again is safe; a write is not retried, and a cut
    write answers 503 with Retry-After (`api.errors`).
    """
    for endpoint, view in list(app.view_functions.items()):
        methods = set().union(*(rule.methods or () for rule in app.url_map.iter_rules(endpoint)))
        if methods and methods <= READ_METHODS:
            app.view_functions[endpoint] = _once_more_after_a_cut(view)


def _once_more_after_a_cut(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def read(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except DBAPIError as exc:
            if not is_outage(exc):
                raise
            log.warning("a read lost its database connection; reading again: %s", exc.orig)
            return view(*args, **kwargs)

    return read


def _read_json_body() -> None:
    """Parse an API request's JSON body once, so a body that is not JSON gets a clear error.

    spectree reads bodies leniently (anything unparsable becomes `{}`), which would answer
    'runId is required' to a typo in the JSON; Flask caches what is parsed here for it.
    """
    if request.method not in BODY_METHODS or not request.path.startswith("/api/"):
        return
    if not request.get_data(cache=True).strip():  # raises 413 past MAX_CONTENT_LENGTH
        return
    if not request.is_json:
        raise ApiError(415, "send the body as JSON, with Content-Type: application/json")
    if request.get_json(silent=True) is None:
        raise ValidationError("the body is not valid JSON")


def _redis_broker(settings: Settings) -> object | None:
    """A Redis client for the health check when the broker is Redis (it connects on use)."""
    url = settings.celery_broker_url
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
