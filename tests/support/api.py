"""What the API tests share: the admin token and cron secret, a small account, and calls of the
sync routes through a Flask test client."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from core.settings import Settings
from sandbox import AccountSpec
from tests.support.services import make_settings

ADMIN_TOKEN = "admin-token-for-tests"
CRON_SECRET = "cron-secret-for-tests"
METRICS_TOKEN = "metrics-token-for-tests"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CRON = {"Authorization": f"Bearer {CRON_SECRET}"}
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}
SYNC = "/api/admin/sync/v2"


def small_account(**overrides: Any) -> AccountSpec:
    """A small Tiny account whose limits stay out of the way: a whole run takes a second."""
    values: dict[str, Any] = dict(
        orders=40,
        days=75,
        products=8,
        payables=30,
        receivables=30,
        rate_limit_calls=1_000_000,
        max_concurrent=1_000,
    )
    return AccountSpec(**{**values, **overrides})


def api_settings(db_url: str, **overrides: Any) -> Settings:
    """Test settings with the admin token and the cron secret set."""
    values: dict[str, Any] = {
        "sync_admin_token": ADMIN_TOKEN,
        "cron_secret": CRON_SECRET,
        "metrics_token": METRICS_TOKEN,
        # The auth tests try every wrong credential on every route from one address; the
        # throttle's own tests (tests/api/test_throttle.py) use the default limit.
        "auth_failure_limit": "100000 per minute",
    }
    return make_settings(db_url, **{**values, **overrides})


class Queue(list[str]):
    """An `enqueue` that records the runs handed to it."""

    def __call__(self, run_id: str) -> None:
        self.append(run_id)


def create_run(client: FlaskClient, company_id: str, **body: Any) -> str:
    """Create a run through the API; returns its id."""
    body = {"companyId": company_id, "mode": "incremental", **body}
    response = client.post(f"{SYNC}/create", json=body, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["runId"])


def post(client: FlaskClient, route: str, run_id: str) -> Any:
    """POST `{runId}` to a sync route; returns the response."""
    return client.post(f"{SYNC}/{route}", json={"runId": run_id}, headers=AUTH)


def step_until_done(client: FlaskClient, run_id: str, max_steps: int = 50) -> dict[str, Any]:
    """Call the step route until hasMore is false; returns the last body."""
    for _ in range(max_steps):
        response = post(client, "step", run_id)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        if not body["hasMore"]:
            return dict(body)
    raise AssertionError(f"run {run_id} still has work after {max_steps} steps")
