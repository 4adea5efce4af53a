"""Failed sign-ins and failed bearer tokens are throttled per client: 429 with Retry-After
past the limit (a Portuguese message on the sign-in page), while other clients, and signed-in
pages that never fail, go on."""

from __future__ import annotations

import uuid

import pytest
import redis

from api import create_app
from core.settings import Settings
from tests.support.api import ADMIN_TOKEN, AUTH, SYNC, api_settings
from tests.support.env import REDIS_TEST_URL, unavailable
from tests.support.services import make_services

DEFAULT_LIMIT = Settings.auth_failure_limit  # "10 per minute"
ATTACKER = {"REMOTE_ADDR": "198.51.100.7"}
SOMEONE_ELSE = {"REMOTE_ADDR": "198.51.100.8"}
WRONG = {"Authorization": "Bearer wrong-token"}


@pytest.fixture
def throttled(db_url, sandbox):
    services = make_services(api_settings(db_url, auth_failure_limit=DEFAULT_LIMIT), sandbox)
    yield create_app(services=services)
    services.close()


def test_wrong_bearer_tokens_get_429_with_retry_after_past_the_limit(throttled):
    client = throttled.test_client()
    codes = [
        client.get(f"{SYNC}/runs", headers=WRONG, environ_base=ATTACKER).status_code
        for _ in range(12)
    ]
    assert codes == [401] * 10 + [429] * 2
    blocked = client.get(f"{SYNC}/runs", headers=AUTH, environ_base=ATTACKER)
    assert blocked.status_code == 429  # even the right token waits: the client is throttled
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    assert "too many failed credentials" in blocked.get_json()["error"]
    # Another client, with the right token, is not affected; nor are its wrong tries counted
    # against the first.
    assert client.get(f"{SYNC}/runs", headers=AUTH, environ_base=SOMEONE_ELSE).status_code == 200
    assert client.get(f"{SYNC}/runs", headers=WRONG, environ_base=SOMEONE_ELSE).status_code == 401


def test_successful_requests_never_spend_the_allowance(throttled):
    client = throttled.test_client()
    for _ in range(30):
        assert client.get(f"{SYNC}/runs", headers=AUTH, environ_base=ATTACKER).status_code == 200
    assert client.get(f"{SYNC}/runs", headers=WRONG, environ_base=ATTACKER).status_code == 401


def test_wrong_cron_secrets_and_metrics_tokens_count_too(throttled):
    client = throttled.test_client()
    for _ in range(5):
        assert (
            client.post("/api/cron/sync", headers=WRONG, environ_base=ATTACKER).status_code == 401
        )
    for _ in range(5):
        assert client.get("/metrics", headers=WRONG, environ_base=ATTACKER).status_code == 401
    assert client.get("/metrics", headers=WRONG, environ_base=ATTACKER).status_code == 429


def _sign_in(client, token: str):
    client.get("/entrar", environ_base=ATTACKER)
    with client.session_transaction() as session:
        form_token = session["login_csrf"]
    return client.post("/entrar", data={"token": token, "csrf": form_token}, environ_base=ATTACKER)


def test_the_sign_in_page_says_in_portuguese_when_to_try_again(throttled):
    client = throttled.test_client()
    for _ in range(10):
        assert _sign_in(client, "wrong").status_code == 401
    page = _sign_in(client, ADMIN_TOKEN)
    assert page.status_code == 429
    assert "Muitas tentativas erradas" in page.get_data(True)
    assert int(page.headers["Retry-After"]) >= 1
    other = throttled.test_client()
    other.get("/entrar", environ_base=SOMEONE_ELSE)
    with other.session_transaction() as session:
        form_token = session["login_csrf"]
    ok = other.post(
        "/entrar", data={"token": ADMIN_TOKEN, "csrf": form_token}, environ_base=SOMEONE_ELSE
    )
    assert ok.status_code == 302


def test_with_redis_the_count_is_shared_by_every_process(db_url, sandbox):
    try:
        redis.Redis.from_url(REDIS_TEST_URL).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    settings = api_settings(db_url, auth_failure_limit="4 per minute", redis_url=REDIS_TEST_URL)
    first = make_services(settings, sandbox)
    second = make_services(settings, sandbox)
    apps = [create_app(services=first), create_app(services=second)]
    client_ip = {"REMOTE_ADDR": f"2001:db8::{uuid.uuid4().hex[:4]}"}  # a fresh count in Redis
    codes = [
        apps[i % 2]
        .test_client()
        .get(f"{SYNC}/runs", headers=WRONG, environ_base=client_ip)
        .status_code
        for i in range(5)
    ]
    assert codes == [401, 401, 401, 401, 429]
    first.close()
    second.close()
