"""Tiny API v3's OAuth 2.0 (Tiny's Keycloak), as the sandbox plays it.

Under `/realms/tiny/protocol/openid-connect/`:

- `GET auth` (response_type=code, client_id, redirect_uri, scope, state, code_challenge,
  code_challenge_method=S256) shows a page with "Autorizar" (a form POST back to `auth`) and
  "Negar"; approving redirects to `redirect_uri?code=...&state=...`, denying to
  `redirect_uri?error=access_denied&state=...`. With `auto_approve` the GET redirects at once.
  An unknown client or a redirect_uri other than the registered one gets an error page, no
  redirect (as Keycloak does).
- `POST token` (form; client_id/client_secret in the form or HTTP Basic), grants
  `authorization_code` and `refresh_token`. Codes are single-use, expire (default 60 s) and
  are bound to the client, the redirect_uri and the PKCE challenge (S256). A refresh ROTATES:
  the refresh token used stops working at once ("Token is not active"), as does an expired
  one; access tokens already issued stay valid until they expire.

Expiry follows the sandbox's clock (`Sandbox.now`), so a test moves time with its clock or
the clock skew. Tokens are opaque random strings.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from werkzeug.wrappers import Request

from sandbox.services import EMPRESA

OAUTH_MARK = "/realms/tiny/protocol/openid-connect/"
ISSUER_PATH = "/realms/tiny"
# Keycloak's defaults as Tiny configures them (TINY_API_V3.md): 4 h, 1 day; codes 60 s.
ACCESS_SECONDS = 4 * 3600.0
REFRESH_SECONDS = 86_400.0
CODE_SECONDS = 60.0
GRANTS = ("authorization_code", "refresh_token")
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")

Response = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class OAuthApp:
    """An app created in the ERP: its credentials and the account whose data it sees."""

    client_id: str
    client_secret: str
    redirect_uri: str
    token: str


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    scope: str
    expires_us: int


@dataclass
class _Grant:
    """An issued access or refresh token."""

    client_id: str
    account: str
    scope: str
    session: str
    expires_us: int
    used: bool = False


class AccessDenied(Exception):
    """A bearer token the API refuses; `reason` is missing, unknown or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _TokenError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def _json(status: int, data: Mapping[str, object]) -> Response:
    headers = [
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
    ]
    return status, headers, json.dumps(data).encode()


def _page(status: int, title: str, body: str) -> Response:
    text = (
        '<!doctype html>\n<html lang="pt-BR"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - Tiny (sandbox)</title></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    return status, [("Content-Type", "text/html; charset=utf-8")], text.encode()


def _redirect(uri: str, params: dict[str, str]) -> Response:
    location = uri + ("&" if "?" in uri else "?") + urlencode(params)
    return 302, [("Location", location), ("Content-Type", "text/plain")], b""


def s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuthServer:
    """Apps, codes and tokens of the sandbox's Keycloak; every moment comes from `now_us`."""

    def __init__(self, now_us: Callable[[], int]) -> None:
        self._now_us = now_us
        self._lock = threading.Lock()
        self.apps: dict[str, OAuthApp] = {}
        self.auto_approve = False
        self.access_seconds = ACCESS_SECONDS
        self.refresh_seconds = REFRESH_SECONDS
        self.code_seconds = CODE_SECONDS
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._counts: dict[str, Counter[str]] = {}

    # -- configuration -------------------------------------------------------------------
    def add_app(self, app: OAuthApp) -> None:
        """Register (or replace) an app."""
        for name in ("client_id", "client_secret", "redirect_uri", "token"):
            if not getattr(app, name):
                raise ValueError(f"{name} must be non-empty")
        with self._lock:
            self.apps[app.client_id] = app

    def set_lifetimes(
        self, access: float | None = None, refresh: float | None = None, code: float | None = None
    ) -> None:
        """Lifetimes in seconds of access tokens, refresh tokens and codes (None: unchanged)."""
        for name, value in (("access", access), ("refresh", refresh), ("code", code)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} lifetime must be positive")
        with self._lock:
            self.access_seconds = access or self.access_seconds
            self.refresh_seconds = refresh or self.refresh_seconds
            self.code_seconds = code or self.code_seconds

    def counters(self, client_id: str) -> dict[str, int]:
        """Token requests of an authenticated client per grant, whatever their outcome."""
        with self._lock:
            counts = self._counts.get(client_id, Counter())
            return {grant: counts[grant] for grant in GRANTS}

    def reset_counters(self) -> None:
        """Forget the token requests counted so far."""
        with self._lock:
            self._counts.clear()

    # -- the resource server's side ------------------------------------------------------
    def account_of(self, access_token: str | None) -> str:
        """The account an access token reads; AccessDenied when it is missing or not valid."""
        if not access_token:
            raise AccessDenied("missing")
        with self._lock:
            grant = self._access.get(access_token)
        if grant is None:
            raise AccessDenied("unknown")
        if self._now_us() >= grant.expires_us:
            raise AccessDenied("expired")
        return grant.account

    # -- HTTP ----------------------------------------------------------------------------
    def respond(self, request: Request) -> Response:
        """Answer a request under OAUTH_MARK."""
        action = request.path.split(OAUTH_MARK, 1)[1].strip("/")
        if action == "auth" and request.method in ("GET", "POST"):
            return self._authorize(request)
        if action == "token":
            if request.method != "POST":
                return _json(405, {"error": "invalid_request", "error_description": "HTTP 405"})
            try:
                return _json(200, self._token(request))
            except _TokenError as exc:
                body = {"error": exc.error, "error_description": exc.description}
                return _json(exc.status, body)
        return _page(404, "Página não encontrada", "<p>Endereço desconhecido.</p>")

    # -- authorisation endpoint ----------------------------------------------------------
    def _authorize(self, request: Request) -> Response:
        params = request.args if request.method == "GET" else request.form
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        app = self.apps.get(client_id)
        if app is None:
            return _page(400, "Aplicativo não encontrado", "<p>O client_id não existe.</p>")
        if redirect_uri != app.redirect_uri:
            text = "<p>Parâmetro inválido: redirect_uri não é o cadastrado no aplicativo.</p>"
            return _page(400, "Endereço de retorno inválido", text)
        state = {"state": params["state"]} if "state" in params else {}
        if params.get("response_type") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **state})
        challenge = params.get("code_challenge") or None
        if challenge is not None:
            method = params.get("code_challenge_method", "")
            if method != "S256" or not _VERIFIER.match(challenge):
                description = "Invalid parameter: code challenge method is not supported or invalid"
                return _redirect(
                    redirect_uri,
                    {"error": "invalid_request", "error_description": description, **state},
                )
        decision = params.get("decisao") if request.method == "POST" else None
        if decision is None and not self.auto_approve:
            return self._consent_page(request, app)
        if decision not in (None, "autorizar"):
            return _redirect(redirect_uri, {"error": "access_denied", **state})
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(
                client_id,
                redirect_uri,
                challenge,
                params.get("scope") or "openid",
                self._now_us() + int(self.code_seconds * 1_000_000),
            )
        issuer = request.host_url.rstrip("/") + ISSUER_PATH
        session = secrets.token_hex(16)
        return _redirect(
            redirect_uri, {**state, "session_state": session, "iss": issuer, "code": code}
        )

    def _consent_page(self, request: Request, app: OAuthApp) -> Response:
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in request.args.items()
            if k != "decisao"
        )
        action = html.escape(request.script_root + request.path)
        body = (
            f"<p>O aplicativo <strong>{html.escape(app.client_id)}</strong> quer acessar os "
            f"dados da empresa <strong>{EMPRESA}</strong> no Tiny (API v3).</p>\n"
            f'<form method="post" action="{action}">{fields}\n'
            '<button type="submit" name="decisao" value="autorizar">Autorizar</button>\n'
            '<button type="submit" name="decisao" value="negar">Negar</button>\n</form>'
        )
        return _page(200, "Autorizar acesso", body)

    # -- token endpoint ------------------------------------------------------------------
    def _client(self, request: Request) -> OAuthApp:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client_id, secret = auth.username or "", auth.password or ""
        else:
            client_id = request.form.get("client_id", "")
            secret = request.form.get("client_secret", "")
        app = self.apps.get(client_id)
        if app is None or not secrets.compare_digest(secret.encode(), app.client_secret.encode()):
            raise _TokenError(401, "invalid_client", "Invalid client or Invalid client credentials")
        return app

    def _token(self, request: Request) -> dict[str, object]:
        app = self._client(request)
        grant_type = request.form.get("grant_type", "")
        if not grant_type:
            raise _TokenError(400, "invalid_request", "Missing form parameter: grant_type")
        if grant_type not in GRANTS:
            raise _TokenError(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type}")
        with self._lock:
            self._counts.setdefault(app.client_id, Counter())[grant_type] += 1
            now = self._now_us()
            if grant_type == "authorization_code":
                scope = self._redeem_code(app, request, now)
                return self._issue(app, scope, secrets.token_hex(16), now)
            grant = self._rotate(app, request.form.get("refresh_token", ""), now)
            return self._issue(app, grant.scope, grant.session, now)

    def _redeem_code(self, app: OAuthApp, request: Request, now: int) -> str:
        code = request.form.get("code", "")
        if not code:
            raise _TokenError(400, "invalid_request", "Missing parameter: code")
        # Single use: whatever happens next, this code is gone.
        entry = self._codes.pop(code, None)
        if entry is None or entry.client_id != app.client_id or now >= entry.expires_us:
            raise _TokenError(400, "invalid_grant", "Code not valid")
        if request.form.get("redirect_uri", "") != entry.redirect_uri:
            raise _TokenError(400, "invalid_grant", "Incorrect redirect_uri")
        if entry.challenge is not None:
            verifier = request.form.get("code_verifier", "")
            if not verifier:
                raise _TokenError(400, "invalid_grant", "PKCE code verifier not specified")
            if not _VERIFIER.match(verifier) or s256(verifier) != entry.challenge:
                raise _TokenError(
                    400, "invalid_grant", "PKCE verification failed: Invalid code verifier"
                )
        return entry.scope

    def _rotate(self, app: OAuthApp, refresh_token: str, now: int) -> _Grant:
        if not refresh_token:
            raise _TokenError(400, "invalid_request", "Missing parameter: refresh_token")
        grant = self._refresh.get(refresh_token)
        if grant is None:
            raise _TokenError(400, "invalid_grant", "Invalid refresh token")
        if grant.client_id != app.client_id:
            raise _TokenError(
                400,
                "invalid_grant",
                "Invalid refresh token. Token client and authorized client don't match",
            )
        if grant.used or now >= grant.expires_us:
            raise _TokenError(400, "invalid_grant", "Token is not active")
        grant.used = True
        return grant

    def _issue(self, app: OAuthApp, scope: str, session: str, now: int) -> dict[str, object]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(40)
        access_us = int(self.access_seconds * 1_000_000)
        refresh_us = int(self.refresh_seconds * 1_000_000)
        self._access[access] = _Grant(app.client_id, app.token, scope, session, now + access_us)
        self._refresh[refresh] = _Grant(app.client_id, app.token, scope, session, now + refresh_us)
        return {
            "access_token": access,
            "expires_in": math.ceil(self.access_seconds),
            "refresh_expires_in": math.ceil(self.refresh_seconds),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session,
            "scope": scope,
        }
