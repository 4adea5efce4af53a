"""The browser's sign-in: the admin token exchanged for a session cookie, and sign-out.

The session holds `admin`, `sid` (naming its server-side row, `core.sessions`) and a `csrf`
token; the API's auth layer (`api.auth`) accepts that
session on `/api/admin/*` and checks `csrf` in the `X-CSRF-Token` header of writes. The
sign-in and sign-out forms carry their own tokens and must come from this site.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import abort, redirect, render_template, request, session, url_for

from api.auth import browser_signed_in
from api.state import services
from core.sessions import open_session, revoke_session
from core.signin_links import redeem_sign_in_link

F = TypeVar("F", bound=Callable[..., Any])


def signed_in() -> bool:
    """Whether this browser session holds a live admin sign-in (checked on the server)."""
    return bool(session.get("csrf")) and browser_signed_in()


def csrf_token() -> str:
    """The session's CSRF token, for the page's forms and scripts ('' before sign-in)."""
    return str(session.get("csrf", ""))


def login_required(view: F) -> F:
    """Send a visitor who has not signed in to the sign-in page, then back here."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not signed_in():
            return redirect(url_for("ui.sign_in", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: no scheme, no host, no "//evil" or "/\evil".
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("ui.reports")


def _same_origin_request() -> bool:
    """False when the browser says this request came from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:  # an older browser or a script: the form token still has to match
        return True
    # Hosts, not schemes: behind a proxy that ends TLS the app itself sees plain http.
    return urlsplit(origin).netloc == request.host


def _form_token_matches(key: str) -> bool:
    expected = session.get(key)
    given = request.form.get("csrf", "")
    return bool(expected) and hmac.compare_digest(str(expected), given)


def sign_in() -> Any:
    """The sign-in form (or straight on when already signed in); `?link=` spends a link."""
    link = request.args.get("link")
    if link is not None:
        return _sign_in_with_link(link)
    if signed_in():
        return redirect(_safe_next(request.args.get("next")))
    # The form carries a token bound to this browser's (pre-sign-in) session: a page on
    # another site can neither read it nor, with SameSite=Lax, send our cookie along.
    session.setdefault("login_csrf", secrets.token_urlsafe(32))
    return _sign_in_page()


def _sign_in_page(error: str | None = None, status: int = 200) -> Any:
    body = render_template(
        "ui/sign_in.html",
        error=error,
        next=request.values.get("next", ""),
        login_csrf=session.get("login_csrf", ""),
        token_configured=bool(services().settings.sync_admin_token),
    )
    return body, status


def sign_in_post() -> Any:
    """Exchange the admin token for a session."""
    if not _same_origin_request() or not _form_token_matches("login_csrf"):
        session["login_csrf"] = secrets.token_urlsafe(32)
        return _sign_in_page("O formulário expirou ou veio de outro site. Tente de novo.", 400)
    expected = services().settings.sync_admin_token
    given = request.form.get("token", "").strip()
    if not expected:
        return _sign_in_page("O servidor não tem SYNC_ADMIN_TOKEN configurado.", 503)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        return _sign_in_page("Token de administrador inválido.", 401)
    _open_signed_in_session()
    return redirect(_safe_next(request.form.get("next")))


def _sign_in_with_link(link: str) -> Any:
    """A one-time link (`tinysync demo --serve`) signs the browser in, once, for minutes."""
    with services().session_factory() as db:
        spent = redeem_sign_in_link(db, link)
    if not spent or not services().settings.sync_admin_token:
        session.setdefault("login_csrf", secrets.token_urlsafe(32))
        return _sign_in_page(
            "Este link de acesso já foi usado ou expirou. Entre com o token de administrador "
            "ou gere outro link com `tinysync demo --serve`.",
            400,
        )
    _open_signed_in_session()
    return redirect(_safe_next(request.args.get("next")))


def _open_signed_in_session() -> None:
    with services().session_factory() as db:
        _revoke_current(db)  # the cookie this browser had before stops counting
        session.clear()  # a fresh session: nothing from before the sign-in survives it
        session["sid"] = open_session(db)
        db.commit()
    session.permanent = True  # the cookie lasts SESSION_MAX_HOURS, not the browser's life
    session["admin"] = True
    session["csrf"] = secrets.token_urlsafe(32)


def _revoke_current(db: Any) -> None:
    sid = session.get("sid")
    if isinstance(sid, str) and sid:
        revoke_session(db, sid)


def sign_out() -> Any:
    """End the session (a POST with the page's CSRF token)."""
    if signed_in() and (not _same_origin_request() or not _form_token_matches("csrf")):
        abort(400, description="Pedido de saída inválido.")
    with services().session_factory() as db:
        _revoke_current(db)  # every copy of this cookie stops working now
        db.commit()
    session.clear()
    return redirect(url_for("ui.sign_in"))
