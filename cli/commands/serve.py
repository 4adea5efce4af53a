"""`tinysync serve` and `tinysync sandbox`: the HTTP servers (the API and the fake Tiny API)."""

from __future__ import annotations

import typer

from api.state import SERVICES_KEY
from cli.console import console, fail
from cli.database import safe_url
from cli.wiring import shared_sandbox, wsgi_app
from core.settings import Settings, SettingsError


def announce(settings: Settings, url: str, *, sign_in: str | None = None) -> None:
    """What a server says as it starts: where, on which database and Tiny, and how to sign in."""
    if settings.uses_sandbox:
        tiny = "the in-process sandbox (fake data, TINY_API_URL=sandbox)"
    else:
        tiny = f"{settings.tiny_api_url} (real Tiny)"
    if settings.executor == "celery":
        executor = f"celery (broker {safe_url(settings.celery_broker_url or '')})"
    else:
        executor = "inline (each step runs inside the browser's request)"
    sign_in = sign_in or (
        "configured (SYNC_ADMIN_TOKEN)"
        if settings.sync_admin_token
        else "not configured: set SYNC_ADMIN_TOKEN to sign in at /entrar"
    )
    for name, value in (
        ("web UI", f"{url}/relatorios"),
        ("database", safe_url(settings.database_url)),
        ("Tiny", tiny),
        ("executor", executor),
        ("sign-in", sign_in),
    ):
        console.print(f"{name + ':':<10} {value}", highlight=False, markup=False, soft_wrap=True)


def serve(
    port: int = typer.Option(8000, help="Port."), host: str = typer.Option("127.0.0.1")
) -> None:
    """The HTTP API and web UI (development server; use gunicorn in production)."""
    try:
        app = wsgi_app()
    except SettingsError as exc:
        fail(str(exc))
    settings: Settings = app.extensions[SERVICES_KEY].settings
    announce(settings, f"http://{host}:{port}")
    if settings.uses_sandbox:
        console.print(
            "note: this server's sandbox makes its own fake account for each token; to see the "
            "demo's data, run `tinysync demo --serve`",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    app.run(host=host, port=port, threaded=True)


def sandbox(
    port: int = typer.Option(8800, help="Port."),
    host: str = typer.Option("127.0.0.1"),
    orders: int = typer.Option(500, help="Orders per account created on first use."),
) -> None:
    """The fake Tiny API v2 as an HTTP server (point TINY_API_URL at http://host:port/api2)."""
    from sandbox import serve as serve_sandbox

    console.print(f"sandbox on http://{host}:{port}/api2 — tokens are accepted on first use")
    serve_sandbox(shared_sandbox(), host=host, port=port)
