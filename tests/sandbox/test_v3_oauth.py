"""The sandbox's v3 OAuth: consent page, codes (single use, expiry, PKCE), rotation, expiry."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import httpx
import pytest

from sandbox import AccountSpec, Sandbox, SandboxTransport, make_server
from tests.sandbox.v3_support import (
    AUTH,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT,
    TOKEN_URL,
    V3_ROOT,
    auth_params,
    authorize,
    connect,
    consent_form,
    exchange,
    query_of,
    refresh,
)
from tests.support.sandbox_calls import GENEROUS, TOKEN, Clock


@pytest.fixture
def sb(clock: Clock) -> Sandbox:
    sandbox = Sandbox(clock=clock)
    sandbox.add_account(TOKEN, AccountSpec(orders=30, days=30, **GENEROUS))
    sandbox.add_oauth_app(CLIENT_ID, CLIENT_SECRET, REDIRECT, token=TOKEN)
    return sandbox


@pytest.fixture
def http(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sandbox") as client:
        yield client


def reads(http: httpx.Client, access_token: str) -> int:
    """The status of a v3 read with this access token."""
    headers = {"Authorization": f"Bearer {access_token}"}
    return http.get(V3_ROOT + "/pedidos", params={"limit": 1}, headers=headers).status_code


def test_the_consent_page_offers_autorizar_and_negar_as_a_form_back_to_auth(http):
    page = http.get(AUTH, params=auth_params(secrets.token_urlsafe(48)))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'lang="pt-BR"' in page.text and CLIENT_ID in page.text
    assert '<form method="post" action="/realms/tiny/protocol/openid-connect/auth">' in page.text
    assert ">Autorizar</button>" in page.text and ">Negar</button>" in page.text
    assert consent_form(page.text)["state"] == "st-1"
    assert TOKEN not in page.text  # the account's v2 token is a secret


def test_approving_redirects_with_code_and_state_and_the_code_buys_a_bearer_pair(http, sb):
    verifier = secrets.token_urlsafe(48)
    location = authorize(http, verifier)
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "st-1" and query["code"]
    answer = exchange(http, query["code"], verifier)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    pair = answer.json()
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 4 * 3600 and pair["refresh_expires_in"] == 86_400
    assert pair["access_token"] != pair["refresh_token"]
    assert reads(http, pair["access_token"]) == 200
    assert sb.oauth_counters(CLIENT_ID) == {"authorization_code": 1, "refresh_token": 0}


def test_denying_redirects_with_access_denied_and_the_state(http):
    query = query_of(authorize(http, None, decision="negar"))
    assert query == {"error": "access_denied", "state": "st-1"}


def test_auto_approval_redirects_on_the_get(http, sb):
    sb.oauth_auto_approve = True
    verifier = secrets.token_urlsafe(48)
    response = http.get(AUTH, params=auth_params(verifier, state="abc"))
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert query["state"] == "abc"
    assert exchange(http, query["code"], verifier).status_code == 200


def test_an_unknown_client_or_another_redirect_uri_gets_a_page_not_a_redirect(http):
    for params in (
        auth_params(None, client_id="nobody"),
        auth_params(None, redirect_uri="http://evil.test/cb"),
    ):
        response = http.get(AUTH, params=params)
        assert response.status_code == 400
        assert "Location" not in response.headers
        assert "inválido" in response.text or "não encontrado" in response.text


def test_a_challenge_method_other_than_s256_is_refused_back_at_the_app(http):
    params = auth_params(None, code_challenge="x" * 43, code_challenge_method="plain")
    query = query_of(http.get(AUTH, params=params).headers["Location"])
    assert query["error"] == "invalid_request" and query["state"] == "st-1"


def test_a_code_works_once(http):
    verifier = secrets.token_urlsafe(48)
    code = query_of(authorize(http, verifier))["code"]
    assert exchange(http, code, verifier).status_code == 200
    again = exchange(http, code, verifier)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant", "error_description": "Code not valid"}


def test_a_code_expires_after_its_lifetime_on_the_sandbox_clock(http, sb, clock):
    verifier = secrets.token_urlsafe(48)
    code = query_of(authorize(http, verifier))["code"]
    clock.advance(seconds=61)
    assert exchange(http, code, verifier).json()["error"] == "invalid_grant"
    sb.oauth_lifetimes(code=600)
    code = query_of(authorize(http, verifier))["code"]
    clock.advance(seconds=300)
    assert exchange(http, code, verifier).status_code == 200


def test_a_code_is_bound_to_its_client_and_redirect_uri(http, sb):
    sb.add_oauth_app("other-app", "other-secret", REDIRECT, token=TOKEN)
    verifier = secrets.token_urlsafe(48)
    code = query_of(authorize(http, verifier))["code"]
    stolen = exchange(http, code, verifier, client_id="other-app", client_secret="other-secret")
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    code = query_of(authorize(http, verifier))["code"]
    moved = exchange(http, code, verifier, redirect_uri="http://tinysync.test/other")
    assert moved.json() == {"error": "invalid_grant", "error_description": "Incorrect redirect_uri"}


def test_pkce_needs_the_verifier_whose_s256_is_the_challenge(http):
    verifier = secrets.token_urlsafe(48)
    code = query_of(authorize(http, verifier))["code"]
    wrong = exchange(http, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and "PKCE" in wrong.json()["error_description"]
    code = query_of(authorize(http, verifier))["code"]
    missing = exchange(http, code, None)
    assert missing.status_code == 400 and "PKCE" in missing.json()["error_description"]
    code = query_of(authorize(http, verifier))["code"]
    assert exchange(http, code, verifier).status_code == 200


def test_wrong_client_credentials_are_401_invalid_client_in_the_form_or_basic(http):
    verifier = secrets.token_urlsafe(48)
    code = query_of(authorize(http, verifier))["code"]
    in_form = exchange(http, code, verifier, client_secret="guess")
    assert in_form.status_code == 401 and in_form.json()["error"] == "invalid_client"
    basic = http.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(CLIENT_ID, "guess"),
    )
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"


def test_bad_token_requests_are_400_with_an_oauth_error(http):
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    no_grant = http.post(TOKEN_URL, data=credentials)
    assert no_grant.status_code == 400 and no_grant.json()["error"] == "invalid_request"
    password = http.post(TOKEN_URL, data={**credentials, "grant_type": "password"})
    assert password.status_code == 400 and password.json()["error"] == "unsupported_grant_type"
    assert http.get(TOKEN_URL).status_code == 405


def test_a_refresh_rotates_and_the_old_refresh_token_stops_at_once(http, sb):
    first = connect(http)
    second = refresh(http, first["refresh_token"])
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["access_token"] != first["access_token"]
    reused = refresh(http, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "Token is not active"}
    assert refresh(http, pair["refresh_token"]).status_code == 200
    # Access tokens already handed out live until they expire (a loser of a race reads on).
    assert reads(http, first["access_token"]) == 200
    assert sb.oauth_counters(CLIENT_ID) == {"authorization_code": 1, "refresh_token": 3}


def test_a_refresh_token_left_past_its_lifetime_is_invalid_grant(http, sb, clock):
    sb.oauth_lifetimes(access=60, refresh=300)
    pair = connect(http)
    assert (pair["expires_in"], pair["refresh_expires_in"]) == (60, 300)
    # Refreshing within the lifetime keeps the account alive well past one lifetime.
    for _ in range(4):
        clock.advance(seconds=200)
        answer = refresh(http, pair["refresh_token"])
        assert answer.status_code == 200
        pair = answer.json()
    clock.advance(seconds=301)
    lapsed = refresh(http, pair["refresh_token"])
    assert lapsed.status_code == 400
    assert lapsed.json()["error"] == "invalid_grant"
    assert lapsed.json()["error_description"]


def test_an_access_token_expires_on_the_sandbox_clock(http, sb, clock):
    sb.oauth_lifetimes(access=60)
    pair = connect(http)
    clock.advance(seconds=59)
    assert reads(http, pair["access_token"]) == 200
    clock.advance(seconds=2)
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    expired = http.get(V3_ROOT + "/pedidos", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["mensagem"] == "Token de acesso expirado"
    assert "Bearer" in expired.headers["WWW-Authenticate"]


def test_a_refresh_token_of_one_app_does_not_refresh_another(http, sb):
    sb.add_oauth_app("other-app", "other-secret", REDIRECT, token=TOKEN)
    pair = connect(http)
    answer = http.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        auth=("other-app", "other-secret"),
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert refresh(http, pair["refresh_token"]).status_code == 200


def test_of_simultaneous_refreshes_with_one_token_exactly_one_wins(http, sb):
    pair = connect(http)
    start = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def racer() -> None:
        start.wait()
        status = refresh(http, pair["refresh_token"]).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [400] * 7
    assert sb.oauth_counters(CLIENT_ID)["refresh_token"] == 8


def test_an_app_needs_an_existing_account(sb):
    with pytest.raises(KeyError):
        sb.add_oauth_app("ghost", "s", REDIRECT, token="no-such-account")


def test_the_standalone_server_speaks_v3_and_its_admin_drives_oauth():
    sandbox = Sandbox()
    server = make_server(sandbox, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_port}"
    try:
        with httpx.Client(base_url=root, timeout=10) as http:
            spec = {"token": "tok-srv", "orders": 40, "days": 30, "v3_rate_limit_calls": 500}
            assert http.post("/_sandbox/accounts", json=spec).status_code == 200
            app = {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uri": REDIRECT,
                "token": "tok-srv",
            }
            assert http.post("/_sandbox/oauth_app", json=app).status_code == 200
            lifetimes = http.post("/_sandbox/oauth", json={"access": 120, "refresh": 600}).json()
            assert (lifetimes["access"], lifetimes["refresh"]) == (120, 600)
            pair = connect(http)  # the consent page's form POST, over a socket
            assert pair["expires_in"] == 120
            second = refresh(http, pair["refresh_token"]).json()
            headers = {"Authorization": f"Bearer {second['access_token']}"}
            listed = http.get(V3_ROOT + "/pedidos", headers=headers)
            assert listed.status_code == 200 and listed.json()["paginacao"]["total"] == 40
            assert listed.headers["X-RateLimit-Limit"] == "500"
            fail = {"token": "tok-srv", "resource": "pedidos", "status": 503, "times": 1}
            assert http.post("/_sandbox/fail_v3", json=fail).status_code == 200
            assert http.get(V3_ROOT + "/pedidos", headers=headers).status_code == 503
            counters = http.get("/_sandbox/oauth_counters", params={"client_id": CLIENT_ID})
            assert counters.json() == {"authorization_code": 1, "refresh_token": 1}
            assert http.post("/_sandbox/oauth", json={"auto_approve": True}).json()["auto_approve"]
            redirect = http.get(AUTH, params=auth_params(None))
            assert redirect.status_code == 302 and "code=" in redirect.headers["Location"]
            missing = http.post("/_sandbox/oauth_app", json={"client_id": "x"})
            assert missing.status_code == 400 and "client_secret" in missing.json()["error"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_reset_counters_zeroes_the_token_requests_too(http, sb):
    connect(http)
    assert sb.oauth_counters(CLIENT_ID)["authorization_code"] == 1
    sb.reset_counters()
    assert sb.oauth_counters(CLIENT_ID) == {"authorization_code": 0, "refresh_token": 0}
