"""Tiny's OAuth 2.0 (Keycloak) for v3: the authorisation URL with PKCE, and the token endpoint.

The authorisation-code flow: `authorize_url` sends a person to Tiny with `state` and a PKCE
S256 challenge; the callback gets a code, which `OAuthClient.exchange` trades (with the PKCE
verifier and the app's secret) for an access token (4 hours) and a refresh token (1 day, and
rotated: each refresh returns a new one and the old one stops working). `OAuthClient.refresh`
answers `TinyReconnectNeeded` when Keycloak says `invalid_grant` (the refresh token lapsed,
was used already, or the app was revoked): only a person can authorise again.

Secrets and tokens travel in form bodies, never in a URL or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from core.errors import (
    TinyPermanentError,
    TinyReconnectNeeded,
    TinyTransientError,
)
from core.models import utcnow
from core.settings import Settings

#: Keycloak's lifetimes when an answer leaves them out (TINY_API_V3.md).
ACCESS_SECONDS = 4 * 3600
REFRESH_SECONDS = 24 * 3600
SCOPE = "openid"


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (43+ characters of URL-safe randomness) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


def authorize_url(
    settings: Settings, *, client_id: str, redirect_uri: str, state: str, challenge: str
) -> str:
    """Where the browser goes to let tinysync read the company's Tiny account."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in settings.tiny_v3_auth_url else "?"
    return f"{settings.tiny_v3_auth_url}{separator}{query}"


@dataclass(frozen=True)
class TokenPair:
    """An access token and a refresh token, with when each lapses (UTC)."""

    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime

    @classmethod
    def from_answer(cls, body: dict[str, Any], now: datetime | None = None) -> TokenPair:
        """The pair in a token endpoint's answer; TinyTransientError when it is not one."""
        now = now or utcnow()
        access, refresh = body.get("access_token"), body.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise TinyTransientError("Tiny's token endpoint answered without a token pair")
        refresh_seconds = _seconds(body.get("refresh_expires_in"), REFRESH_SECONDS)
        access_seconds = _seconds(body.get("expires_in"), ACCESS_SECONDS)
        return cls(
            access_token=access,
            refresh_token=refresh,
            access_expires_at=now + timedelta(seconds=access_seconds),
            refresh_expires_at=now + timedelta(seconds=refresh_seconds),
        )


def _seconds(value: Any, default: int) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    # Keycloak says 0 for "as long as the session" (offline tokens): take the documented day.
    return seconds if seconds > 0 else default


class OAuthClient:
    """The token endpoint: trade a code for a pair, or a refresh token for the next pair."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        token_url: str | None = None,
    ):
        self.settings = settings
        self.token_url = token_url or settings.tiny_v3_token_url
        self._http = httpx.Client(
            transport=transport,
            timeout=settings.tiny_timeout_seconds,
            headers={"User-Agent": "tinysync/0.1", "Accept": "application/json"},
        )
        #: Calls made to the token endpoint (refreshes and exchanges).
        self.calls = 0

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def exchange(
        self, *, client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str
    ) -> TokenPair:
        """The pair for an authorisation code (the callback's)."""
        return self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                "client_id": client_id,
                "client_secret": client_secret,
            }
        )

    def refresh(self, *, client_id: str, client_secret: str, refresh_token: str) -> TokenPair:
        """The next pair; the refresh token given stops working (Keycloak rotates it)."""
        return self._token(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
                "client_secret": client_secret,
            }
        )

    def _token(self, form: dict[str, str]) -> TokenPair:
        self.calls += 1
        try:
            response = self._http.post(self.token_url, data=form)
        except httpx.TimeoutException as exc:
            raise TinyTransientError("Tiny's token endpoint did not answer in time") from exc
        except httpx.TransportError as exc:
            raise TinyTransientError(
                f"could not reach Tiny's token endpoint: {type(exc).__name__}"
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TinyTransientError(f"Tiny's token endpoint answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise TinyTransientError("Tiny's token endpoint answered something not JSON") from exc
        if not isinstance(body, dict):
            raise TinyTransientError("Tiny's token endpoint answered something not an object")
        if response.status_code >= 400:
            error = str(body.get("error") or "")
            said = str(body.get("error_description") or error or response.status_code)
            if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
                raise TinyReconnectNeeded(f"Tiny recusou a autorização ({said})", code=400)
            raise TinyPermanentError(
                f"Tiny's token endpoint refused the request (HTTP {response.status_code}): {said}",
                code=response.status_code,
            )
        return TokenPair.from_answer(body)
