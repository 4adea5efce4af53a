"""A step that meets Tiny's limit (code 6) says how long the run waits, and so does status."""

from __future__ import annotations

from api import create_app
from tests.support.api import AUTH, SYNC, api_settings, create_run, post
from tests.support.services import fast_spec, make_services, new_company


def test_the_step_and_the_status_carry_the_wait_tiny_imposed(sqlite_url, sandbox):
    settings = api_settings(
        sqlite_url,
        tiny_min_interval_ms=0,
        tiny_rate_limit_backoff_seconds=42,
        sync_step_budget_seconds=1,
    )
    services = make_services(settings, sandbox)
    try:
        spec = fast_spec(orders=30, days=30, rate_limit_calls=2, rate_limit_window_seconds=60)
        company = new_company(services, sandbox, "tok-pause", spec)
        client = create_app(services=services).test_client()
        run_id = create_run(client, company)
        post(client, "start", run_id)
        answer = None
        for _ in range(10):
            answer = post(client, "step", run_id).get_json()
            if answer.get("retryAfterSeconds"):
                break
        assert answer is not None and 40 < answer["retryAfterSeconds"] <= 42, answer
        status = client.get(f"{SYNC}/status?runId={run_id}", headers=AUTH).get_json()
        assert 30 < status["retryAfterSeconds"] <= 42, status
        messages = [entry["message"] for entry in status["logs"]]
        assert any("aguardando o limite do Tiny: 42 s" in m for m in messages), messages
    finally:
        services.close()
