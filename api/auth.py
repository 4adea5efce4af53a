"""Who may call what: the admin token (or a signed-in browser session) and the cron secret.

Both checks are one `before_request` on the whole app, keyed on the path prefix, so a route
added under `/api/admin/` or `/api/cron/` by any blueprint is protected without asking for it.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, g, request, session

from api.errors import ApiError
from api.state import services
from core.sessions import session_alive

ADMIN_PREFIX = "/api/admin/"
CRON_PREFIX = "/api/cron/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
_SESSION_KEY_INFO = b"tinysync session v1\x00"


def protect(app: Flask) -> None:
    """Make every admin and cron request prove who it is before anything else runs."""
    app.before_request(_authorize)


def _authorize() -> None:
    if request.path.startswith(ADMIN_PREFIX):
        _require_admin()
    elif request.path.startswith(CRON_PREFIX):
        _require_cron_secret()


def session_key(secret_key: str, admin_token: str | None) -> str:
    """The key that signs session cookies: SECRET_KEY and the admin token, neither alone.

    SECRET_KEY has a public development default; with the admin token mixed in, a cookie
    cannot be forged by someone who does not already hold the token, and changing the token
    signs every browser out.
    """
    message = _SESSION_KEY_INFO + (admin_token or "").encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header, if there is one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def same_secret(given: str, expected: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _require_admin() -> None:
    expected = services().settings.sync_admin_token
    if not expected:
        raise ApiError(503, "the admin API is disabled: set SYNC_ADMIN_TOKEN on the server")
    if "Authorization" in request.headers:
        given = bearer_token()
        if given is None or not same_secret(given, expected):
            raise _unauthorized("the admin token is wrong")
        return
    if browser_signed_in():
        _require_csrf()
        return
    raise _unauthorized("this route needs Authorization: Bearer <SYNC_ADMIN_TOKEN>")


def browser_signed_in() -> bool:
    """Whether this request's session cookie names a live server-side session.

    The cookie alone is not enough: sign-out, a new sign-in, the idle and the absolute
    timeouts end the session row it names (`core.sessions`), and with it every copy of the
    cookie. Read once per request.
    """
    if "tinysync_signed_in" not in g:
        sid = session.get("sid")
        alive = False
        if session.get("admin") is True and isinstance(sid, str) and sid:
            with services().session_factory() as db:
                alive = session_alive(db, services().settings, sid)
        g.tinysync_signed_in = alive
    return bool(g.tinysync_signed_in)


def _require_csrf() -> None:
    # A browser sends the session cookie on its own; a write must also carry the token only
    # the page knows, so another site cannot make the browser write for it.
    if request.method in SAFE_METHODS:
        return
    expected = session.get("csrf")
    given = request.headers.get(CSRF_HEADER, "")
    if not isinstance(expected, str) or not expected or not same_secret(given, expected):
        raise ApiError(403, f"the {CSRF_HEADER} header is missing or does not match the session")


def _require_cron_secret() -> None:
    expected = services().settings.cron_secret
    if not expected:
        raise ApiError(503, "the cron route is disabled: set CRON_SECRET on the server")
    given = bearer_token()
    if given is None or not same_secret(given, expected):
        raise _unauthorized("this route needs Authorization: Bearer <CRON_SECRET>")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer realm="tinysync"'})
