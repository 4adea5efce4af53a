"""`/metrics` per Tiny account: calls, refusals (codes 6 and 11), pace, announced limit, wait.

Accounts are named by 8 hex of their key unless METRICS_ACCOUNT_LABEL=name; with Redis the
figures are every process's (here: a "worker" limiter and the API's own, on one Redis).
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from api import create_app
from core.models import Company
from core.ratelimit import RateLimiter, RedisRateLimiter
from core.services import build_services
from sandbox import Sandbox, SandboxTransport
from tests.support.api import AUTH, METRICS, SYNC, api_settings, create_run, step_until_done
from tests.support.api import small_account as account
from tests.support.env import unavailable
from tests.support.services import new_company

PLAN = 6000  # calls a minute: a run of the small account takes a fraction of a second
ACCOUNT_FAMILIES = {
    "tinysync_account_tiny_calls",
    "tinysync_account_tiny_refusals",
    "tinysync_account_limiter_wait_seconds",
    "tinysync_account_pace_calls_per_minute",
    "tinysync_account_announced_limit_calls_per_minute",
}


def _families(client, headers=METRICS) -> dict[str, list]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _by_account(samples: list, suffix: str = "") -> dict[Any, float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name.endswith(suffix)}


def _synced_app(db_url: str, sandbox: Sandbox, limiter: RateLimiter | None = None, **settings):
    services = build_services(
        api_settings(db_url, **settings), transport=SandboxTransport(sandbox), limiter=limiter
    )
    app = create_app(services=services)
    client = app.test_client()
    company = new_company(services, sandbox, "tok-metrics", account(rate_limit_calls=PLAN))
    run_id = create_run(client, company)
    client.post(f"{SYNC}/start", json={"runId": run_id}, headers=AUTH)
    done = step_until_done(client, run_id)
    with services.session_factory() as session:
        key = session.scalars(select(Company.tinyAccountKey)).one()
    return services, client, key, done


def test_each_account_s_calls_pace_and_limit_are_shown_under_a_short_id(db_url, sandbox):
    services, client, key, _ = _synced_app(db_url, sandbox)
    families = _families(client)
    assert ACCOUNT_FAMILIES <= set(families)
    short = key[:8]
    calls = _by_account(families["tinysync_account_tiny_calls"], "_total")
    assert calls == {(("account", short),): sandbox.counters("tok-metrics").calls}
    refusals = _by_account(families["tinysync_account_tiny_refusals"], "_total")
    assert refusals == {
        (("account", short), ("code", "6")): 0,
        (("account", short), ("code", "11")): 0,
    }
    pace = families["tinysync_account_pace_calls_per_minute"]
    assert [s.value for s in pace] == [pytest.approx(PLAN * 0.95, rel=1e-3)]
    announced = families["tinysync_account_announced_limit_calls_per_minute"]
    assert [s.value for s in announced] == [PLAN]
    assert all(s.value >= 0 for s in families["tinysync_account_limiter_wait_seconds"])
    text = client.get("/metrics", headers=METRICS).get_data(as_text=True)
    assert "Company tok-metrics" not in text  # no company name unless configured
    public = _families(client, headers={})
    assert not ACCOUNT_FAMILIES & set(public)  # business figures: with the token only
    services.close()


def test_the_company_name_labels_an_account_when_configured(db_url, sandbox):
    services, client, key, _ = _synced_app(db_url, sandbox, metrics_account_label="name")
    calls = _by_account(_families(client)["tinysync_account_tiny_calls"], "_total")
    assert list(calls) == [(("account", "Company tok-metrics"),)]
    services.close()


def test_with_redis_the_api_shows_the_calls_of_every_process(db_url, sandbox):
    try:
        import fakeredis
        import lupa  # noqa: F401
    except ImportError as exc:
        unavailable("fakeredis with Lua (lupa)", exc)
    server = fakeredis.FakeServer()

    def limiter() -> RedisRateLimiter:
        return RedisRateLimiter(fakeredis.FakeRedis(server=server), 0, 4, prefix="metrics-test")

    services, client, key, _ = _synced_app(db_url, sandbox, limiter())
    by_the_api = sandbox.counters("tok-metrics").calls
    worker = limiter()  # another process's limiter: its calls and refusals count too
    for _ in range(3):
        with worker.slot(key):
            pass
    worker.refused(key, 11)
    families = _families(client)
    calls = _by_account(families["tinysync_account_tiny_calls"], "_total")
    assert calls == {(("account", key[:8]),): by_the_api + 3}
    refusals = _by_account(families["tinysync_account_tiny_refusals"], "_total")
    assert refusals[(("account", key[:8]), ("code", "11"))] == 1
    services.close()
