"""Throttled guessing: failed sign-ins and failed bearer tokens, counted per client.

Flask-Limiter holds the counts (in Redis when one is configured, so every process shares
them; in memory otherwise). Only requests that carry a credential are looked at — a bearer
token, or the sign-in form — and only their 401 answers count, so a signed-in page polling
the status never spends the allowance, and the right token keeps working for other clients.
Past AUTH_FAILURE_LIMIT the client gets 429 with Retry-After (the sign-in page says so in
Portuguese) until the window passes, whatever it sends.
"""

from __future__ import annotations

import time

from flask import Flask, Response, render_template, request, session
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from api.errors import error_response
from core.settings import Settings

SIGN_IN_PATH = "/entrar"


def throttle(app: Flask, settings: Settings) -> Limiter:
    """Count the client's failed credentials; must come before the auth check."""
    redis_url = settings.shared_redis_url
    return Limiter(
        key_func=get_remote_address,  # the client's address (ProxyFix sets it behind a proxy)
        app=app,
        storage_uri=redis_url or "memory://",
        strategy="moving-window",
        key_prefix="tinysync-auth",
        application_limits=[settings.auth_failure_limit],
        application_limits_exempt_when=lambda: not _carries_a_credential(),
        application_limits_deduct_when=lambda response: response.status_code == 401,
        headers_enabled=True,
        swallow_errors=True,  # Redis down: no throttling for a moment, never a 500
        on_breach=_too_many,
    )


def _carries_a_credential() -> bool:
    if "Authorization" in request.headers:
        return True
    return request.path == SIGN_IN_PATH and request.method == "POST"


def _too_many(limit: RequestLimit) -> Response:
    wait = max(1, int(limit.reset_at - time.time()))
    if request.path == SIGN_IN_PATH:
        body = render_template(
            "ui/sign_in.html",
            error=f"Muitas tentativas erradas. Aguarde {wait} segundos e tente de novo.",
            next=request.values.get("next", ""),
            login_csrf=session.get("login_csrf", ""),
            token_configured=True,
        )
        response = Response(body, status=429, mimetype="text/html")
    else:
        response = error_response(
            429, f"too many failed credentials from this client; try again in {wait} s"
        )
    response.headers["Retry-After"] = str(wait)
    return response
