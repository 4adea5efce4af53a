"""Helpers for the v3 sandbox tests: the OAuth dance as a browser and an app would do it."""

from __future__ import annotations

import html
import json
import re
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from sandbox.oauth import s256

AUTH = "/realms/tiny/protocol/openid-connect/auth"
TOKEN_URL = "/realms/tiny/protocol/openid-connect/token"
V3_ROOT = "/public-api/v3"
CLIENT_ID, CLIENT_SECRET, REDIRECT = "app-123", "s3cr3t-app", "http://tinysync.test/callback"


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect's Location, one value each."""
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def auth_params(verifier: str | None, state: str = "st-1", **extra: str) -> dict[str, str]:
    """The authorisation request's query, with PKCE S256 when a verifier is given."""
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": state,
    }
    if verifier is not None:
        params.update(code_challenge=s256(verifier), code_challenge_method="S256")
    params.update(extra)
    return params


def consent_form(page: str) -> dict[str, str]:
    """The hidden fields of the consent page's form."""
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {html.unescape(k): html.unescape(v) for k, v in fields}


def authorize(http: httpx.Client, verifier: str | None, decision: str = "autorizar") -> str:
    """Open the consent page, press a button; the redirect's Location."""
    page = http.get(AUTH, params=auth_params(verifier))
    assert page.status_code == 200, page.text
    response = http.post(AUTH, data={**consent_form(page.text), "decisao": decision})
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def exchange(
    http: httpx.Client, code: str, verifier: str | None, **overrides: str
) -> httpx.Response:
    """POST the code to the token endpoint with the client's credentials in the form."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    form.update(overrides)
    return http.post(TOKEN_URL, data=form)


def refresh(http: httpx.Client, refresh_token: str) -> httpx.Response:
    """A refresh with HTTP Basic client authentication."""
    return http.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )


def connect(http: httpx.Client) -> dict[str, Any]:
    """The whole authorisation-code flow with PKCE; the token endpoint's answer."""
    verifier = secrets.token_urlsafe(48)
    code = query_of(authorize(http, verifier))["code"]
    answer = exchange(http, code, verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def v3_json(response: httpx.Response) -> Any:
    """A v3 body with numbers as Decimal, the way a careful client reads money."""
    return json.loads(response.text, parse_float=Decimal)


class V3:
    """GETs on the v3 face with a bearer token."""

    def __init__(self, http: httpx.Client, access_token: str) -> None:
        self.http = http
        self.access_token = access_token

    def raw(self, path: str, **params: Any) -> httpx.Response:
        """The HTTP response of one GET."""
        headers = {"Authorization": f"Bearer {self.access_token}"}
        return self.http.get(V3_ROOT + path, params=params, headers=headers)

    def __call__(self, path: str, **params: Any) -> Any:
        response = self.raw(path, **params)
        assert response.status_code == 200, response.text
        return v3_json(response)

    def all(self, path: str, limit: int = 100, **params: Any) -> list[dict[str, Any]]:
        """Every item of a listing, by offset, until the total is reached."""
        items: list[dict[str, Any]] = []
        while True:
            body = self(path, limit=limit, offset=len(items), **params)
            items += body["itens"]
            if not body["itens"] or len(items) >= body["paginacao"]["total"]:
                return items
