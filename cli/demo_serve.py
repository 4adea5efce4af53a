"""`tinysync demo --serve`: the web UI on the demo's database and in-process Tiny account.

The app is built in this process, on `shared_sandbox()`: the demo token reaches the same fake
account the demo just synced (a server in another process would build another one for it).
Without a SYNC_ADMIN_TOKEN in the environment a random one is made for this server, and a
one-time sign-in link (`core.signin_links`) signs the browser in on the demo company's reports.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from cli.commands.serve import announce
from cli.console import console
from cli.wiring import build
from core.settings import Settings
from core.signin_links import SIGN_IN_LINK_MINUTES, issue_sign_in_link


def demo_app_settings(settings: Settings) -> Settings:
    """The demo's settings for serving: an admin token (random, for this run) if none is set."""
    if settings.sync_admin_token:
        return settings
    return settings.with_(sync_admin_token=secrets.token_urlsafe(32))


def sign_in_url(base: str, token: str, company_id: str, month: str) -> str:
    """The one-time link that lands on the company's reports of `month`."""
    target = "/relatorios?" + urlencode({"companyId": company_id, "month": month})
    return f"{base}/entrar?" + urlencode({"link": token, "next": target})


def serve_demo(settings: Settings, company_id: str, *, host: str, port: int, month: str) -> None:
    """Serve the UI on the demo's data until Ctrl-C, after printing where and how to sign in."""
    from api import create_app

    own_token = not settings.sync_admin_token
    settings = demo_app_settings(settings)
    services = build(settings)  # the same in-process sandbox: same token, same account
    app = create_app(settings, services=services)
    with services.session_factory() as db:
        token = issue_sign_in_link(db)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    announce(
        settings,
        base,
        sign_in="with the link below"
        + (" (SYNC_ADMIN_TOKEN is unset: this server made a random one)" if own_token else ""),
    )
    console.print(
        f"sign in (once, within {SIGN_IN_LINK_MINUTES} min): "
        f"[bold]{sign_in_url(base, token, company_id, month)}[/bold]",
        highlight=False,
        soft_wrap=True,
    )
    app.run(host=host, port=port, threaded=True)
