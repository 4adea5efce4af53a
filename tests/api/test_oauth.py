"""Connecting a v3 company through the browser: "Conectar ao Tiny" sends it to Tiny with a
state bound to the sign-in and a PKCE S256 challenge; the callback stores the pair; denied,
a wrong state, a used code or a lapsed sign-in come back as a Portuguese page, never a 500.
The companies API takes a v3 company and never returns its secret or tokens."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

from core.models import Company
from tests.support.api import AUTH
from tests.support.v3 import SECRET, add_v3_company, authorise

REDIRECT = "http://localhost/oauth/tiny/callback"
TOKEN = "tok-oauth"


def _sign_in(client) -> None:
    assert client.get("/entrar").status_code == 200
    with client.session_transaction() as session:
        form_token = session["login_csrf"]
    from tests.support.api import ADMIN_TOKEN

    answer = client.post("/entrar", data={"token": ADMIN_TOKEN, "csrf": form_token})
    assert answer.status_code == 302


def _company(api_services, company_id: str) -> Company:
    with api_services.session_factory() as session:
        company = session.get(Company, company_id)
        assert company is not None
        return company


def _start(client, company_id: str) -> tuple[str, dict[str, str]]:
    answer = client.get(f"/oauth/tiny/start?companyId={company_id}")
    assert answer.status_code == 302, answer.get_data(True)
    location = answer.headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return location, query


def test_connect_sends_a_bound_state_and_pkce_then_the_callback_stores_the_pair(
    api_services, sandbox, client
):
    company_id, client_id = add_v3_company(api_services, sandbox, TOKEN, redirect_uri=REDIRECT)
    _sign_in(client)
    location, asked = _start(client, company_id)
    assert location.startswith(api_services.settings.tiny_v3_auth_url)
    assert asked["client_id"] == client_id and asked["redirect_uri"] == REDIRECT
    assert asked["code_challenge_method"] == "S256" and len(asked["state"]) >= 32
    with client.session_transaction() as session:
        kept = session["tiny_oauth"]
    digest = hashlib.sha256(kept["verifier"].encode()).digest()
    assert asked["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    back = authorise(sandbox, location)
    assert back["state"] == asked["state"]
    answer = client.get("/oauth/tiny/callback", query_string=back)
    assert answer.status_code == 302
    assert "conectado=1" in answer.headers["Location"]
    company = _company(api_services, company_id)
    assert company.v3RefreshTokenEncrypted and company.v3AccessExpiresAt
    assert not company.needsReconnect
    assert sandbox.oauth_counters(client_id)["authorization_code"] == 1
    page = client.get(answer.headers["Location"]).get_data(True)
    assert "Conectado ao Tiny" in page


def test_a_wrong_state_a_denial_and_a_used_code_are_portuguese_pages(api_services, sandbox, client):
    company_id, _ = add_v3_company(api_services, sandbox, TOKEN, redirect_uri=REDIRECT)
    _sign_in(client)
    location, asked = _start(client, company_id)
    back = authorise(sandbox, location)
    wrong = client.get("/oauth/tiny/callback", query_string={**back, "state": "forged"})
    assert wrong.status_code == 400
    assert "state inválido" in wrong.get_data(True)
    assert not _company(api_services, company_id).v3RefreshTokenEncrypted

    _, asked = _start(client, company_id)
    denied = client.get(
        "/oauth/tiny/callback", query_string={"error": "access_denied", "state": asked["state"]}
    )
    assert denied.status_code == 400
    assert "negada" in denied.get_data(True)
    assert "Conectar ao Tiny" in denied.get_data(True)

    location, asked = _start(client, company_id)
    used = authorise(sandbox, location)
    assert client.get("/oauth/tiny/callback", query_string=used).status_code == 302
    _, again = _start(client, company_id)
    replay = client.get(
        "/oauth/tiny/callback", query_string={"code": used["code"], "state": again["state"]}
    )
    assert replay.status_code == 400
    assert "expirou ou já foi usado" in replay.get_data(True)


def test_a_callback_without_a_sign_in_and_a_start_for_a_v2_company_are_refused_plainly(
    api_services, sandbox, client, company
):
    v3_id, _ = add_v3_company(api_services, sandbox, TOKEN, redirect_uri=REDIRECT)
    anonymous = client.get("/oauth/tiny/callback", query_string={"code": "x", "state": "y"})
    assert anonymous.status_code == 401
    assert "Entre de novo" in anonymous.get_data(True)
    _sign_in(client)
    v2 = client.get(f"/oauth/tiny/start?companyId={company}")
    assert v2.status_code == 400 and "API v2" in v2.get_data(True)
    unknown = client.get("/oauth/tiny/start?companyId=not-an-id")
    assert unknown.status_code == 404
    assert client.get(f"/oauth/tiny/start?companyId={v3_id}").status_code == 302


def test_the_companies_api_adds_a_v3_company_and_never_returns_its_secret(client):
    body = {"name": "ACME v3", "apiVersion": "v3", "clientId": "app-acme", "clientSecret": SECRET}
    created = client.post("/api/admin/companies", json=body, headers=AUTH)
    assert created.status_code == 201, created.get_json()
    company = created.get_json()["company"]
    assert company["apiVersion"] == "v3" and company["clientId"] == "app-acme"
    assert company["connected"] is False and company["needsReconnect"] is False
    listed = client.get("/api/admin/companies", headers=AUTH)
    for answer in (created, listed):
        assert SECRET not in answer.get_data(True)
    missing = client.post(
        "/api/admin/companies",
        json={"name": "No secret", "apiVersion": "v3", "clientId": "app-x"},
        headers=AUTH,
    )
    assert missing.status_code == 400
    assert "client secret" in missing.get_json()["error"]
    v2 = client.post("/api/admin/companies", json={"name": "Old", "token": "t-1"}, headers=AUTH)
    assert v2.status_code == 201 and v2.get_json()["company"]["apiVersion"] == "v2"
