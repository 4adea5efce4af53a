"""`tinysync serve` and `tinysync sandbox`: the HTTP servers (the API and the fake Tiny API)."""

from __future__ import annotations

import typer

from cli.console import console, fail
from cli.wiring import shared_sandbox, wsgi_app
from core.settings import SettingsError


def serve(
    port: int = typer.Option(8000, help="Port."), host: str = typer.Option("127.0.0.1")
) -> None:
    """The HTTP API and web UI (development server; use gunicorn in production)."""
    try:
        app = wsgi_app()
    except SettingsError as exc:
        fail(str(exc))
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
