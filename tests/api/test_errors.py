"""Bad input gets `{success: false, error}` with the right status, never a 500 or a run."""

from __future__ import annotations

import logging
import uuid
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from core.models import SyncRun
from tests.support.api import AUTH, SYNC, create_run

UNKNOWN = str(uuid.uuid4())


def _next_month() -> str:
    today = date.today()
    return f"{today.year + today.month // 12}-{today.month % 12 + 1:02d}"


def _error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.data[:300])
    body = response.get_json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    return str(body["error"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"mode": "incremental"}, "companyId is required"),
        ({"companyId": 123, "mode": "incremental"}, "companyId must be text"),
        ({"companyId": None, "mode": "incremental"}, "companyId must be text"),
        ({"companyId": "not-an-id", "mode": "incremental"}, "is not a valid id"),
        ({"companyId": "<company>"}, "mode is required"),
        ({"companyId": "<company>", "mode": "fast"}, "mode must be 'incremental' or 'period'"),
        ({"companyId": "<company>", "mode": 1}, "mode must be"),
        ({"companyId": "<company>", "mode": "period", "month": "2024-13"}, "does not exist"),
        ({"companyId": "<company>", "mode": "period", "month": "<next month>"}, "future"),
        ({"companyId": "<company>", "mode": "period", "month": "2024-1"}, "form YYYY-MM"),
        ({"companyId": "<company>", "mode": "period", "month": "202²-01"}, "form YYYY-MM"),
        ({"companyId": "<company>", "mode": "period", "month": 202412}, "month must be text"),
        ({"companyId": "<company>", "mode": "period"}, "needs month"),
        (
            {
                "companyId": "<company>",
                "mode": "period",
                "startDate": "2024-01-01",
                "endDate": "2025-06-01",
            },
            "longer than 12 months",
        ),
        (
            {"companyId": "<company>", "mode": "period", "startDate": "2024-02-30"},
            "needs month",
        ),
        (
            {
                "companyId": "<company>",
                "mode": "period",
                "startDate": "2024-02-30",
                "endDate": "2024-03-01",
            },
            "not a date",
        ),
        ({"companyId": "<company>", "mode": "incremental", "month": "2024-01"}, "takes no month"),
        ({"companyId": "<company>", "mode": "incremental", "monht": "2024-01"}, "monht is not a"),
        ({"companyId": "<company>", "mode": "period", "month": "2024-\x0001"}, "NUL"),
    ],
)
def test_bad_creates_are_400_with_a_sentence_and_create_nothing(
    client, company, api_services, body, words
):
    body = {
        key: (company if value == "<company>" else _next_month() if value == "<next month>"
              else value)
        for key, value in body.items()
    }  # fmt: skip
    response = client.post(f"{SYNC}/create", json=body, headers=AUTH)
    assert words in _error(response, 400)
    with api_services.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 0


def test_an_unknown_company_is_404(client):
    response = client.post(
        f"{SYNC}/create", json={"companyId": UNKNOWN, "mode": "incremental"}, headers=AUTH
    )
    assert UNKNOWN in _error(response, 404)


def test_an_inactive_company_cannot_get_a_run(client, company):
    client.post(f"/api/admin/companies/{company}/deactivate", headers=AUTH)
    response = client.post(
        f"{SYNC}/create", json={"companyId": company, "mode": "incremental"}, headers=AUTH
    )
    assert "inactive" in _error(response, 400)


@pytest.mark.parametrize("route", ["start", "step", "cancel", "resume"])
def test_run_routes_answer_unknown_and_malformed_run_ids(client, route):
    url = f"{SYNC}/{route}"
    assert UNKNOWN in _error(client.post(url, json={"runId": UNKNOWN}, headers=AUTH), 404)
    assert "not a valid id" in _error(client.post(url, json={"runId": "abc"}, headers=AUTH), 400)
    assert "runId must be text" in _error(client.post(url, json={"runId": 7}, headers=AUTH), 400)
    assert "runId is required" in _error(client.post(url, json={}, headers=AUTH), 400)
    assert "runId is required" in _error(client.post(url, headers=AUTH), 400)
    assert "NUL" in _error(client.post(url, json={"runId": "a\x00"}, headers=AUTH), 400)


def test_status_and_logs_answer_unknown_and_malformed_run_ids(client):
    assert "runId is required" in _error(client.get(f"{SYNC}/status", headers=AUTH), 400)
    assert "not a valid id" in _error(client.get(f"{SYNC}/status?runId=zz", headers=AUTH), 400)
    assert "NUL" in _error(client.get(f"{SYNC}/status?runId=a%00b", headers=AUTH), 400)
    assert UNKNOWN in _error(client.get(f"{SYNC}/status?runId={UNKNOWN}", headers=AUTH), 404)
    assert UNKNOWN in _error(client.get(f"{SYNC}/runs/{UNKNOWN}/logs", headers=AUTH), 404)
    assert "not a valid id" in _error(client.get(f"{SYNC}/runs/x/logs", headers=AUTH), 400)


def test_bad_history_queries_are_400(client, company):
    run_id = create_run(client, company)
    for query, words in [
        ("status=DONEISH", "status must be"),
        ("limit=abc", "limit must be a whole number"),
        ("limit=0", "limit must be at least 1"),
        ("limit=100000", "limit must be at most 200"),
        ("companyId=xyz", "not a valid id"),
        ("before=xyz", "not a valid id"),
        (f"before={UNKNOWN}", "cursor"),
    ]:
        assert words in _error(client.get(f"{SYNC}/runs?{query}", headers=AUTH), 400), query
    logs = f"{SYNC}/runs/{run_id}/logs"
    assert "cursor" in _error(client.get(f"{logs}?before={UNKNOWN}", headers=AUTH), 400)
    assert "at most 500" in _error(client.get(f"{logs}?limit=501", headers=AUTH), 400)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"{", "not valid JSON"),
        (b'{"runId": }', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"12", "must be a JSON object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(client, data, words):
    response = client.post(
        f"{SYNC}/start", data=data, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert words in _error(response, 400)


def test_a_body_that_is_not_json_at_all_is_415(client):
    response = client.post(
        f"{SYNC}/start", data="runId=1", headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert "Content-Type: application/json" in _error(response, 415)


def test_an_oversized_body_is_413(client, app):
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = '{"runId": "' + "x" * limit + '"}'
    response = client.post(
        f"{SYNC}/start", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert str(limit) in _error(response, 413)


def test_a_wrong_method_is_405_json_with_allow(client):
    response = client.get(f"{SYNC}/create", headers=AUTH)
    assert "use POST" in _error(response, 405)
    assert "POST" in response.headers["Allow"]
    assert "use GET" in _error(client.post("/healthz"), 405)


def test_an_unknown_route_is_404_json(client):
    assert "no route GET /api/nothing" in _error(client.get("/api/nothing"), 404)
    assert "no route" in _error(client.get(f"{SYNC}/nothing", headers=AUTH), 404)


def test_an_unexpected_exception_is_a_generic_500_and_is_logged(app, caplog):
    def explode() -> None:
        raise RuntimeError("secret detail")

    app.add_url_rule("/api/explode", "explode", explode)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/api/explode")
    message = _error(response, 500)
    assert "secret detail" not in message and "server log" in message
    assert "secret detail" in caplog.text


def test_a_database_outage_is_a_503_with_retry_after_not_a_500(app, caplog):
    def database_down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    app.add_url_rule("/api/database-down", "database_down", database_down)
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get("/api/database-down")
    assert "try again" in _error(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert "database unavailable" in caplog.text


class CutOnce:
    """The app's engine, whose next connection is cut as by a database restart."""

    def __init__(self, app):
        self.engine = app.extensions["tinysync"].engine
        self.real_connect = self.engine.connect
        self.cuts = 1

    def connect(self, *args, **kwargs):
        if self.cuts:
            self.cuts -= 1
            raise OperationalError("SELECT ...", {}, Exception("terminating connection"))
        return self.real_connect(*args, **kwargs)

    def __enter__(self):
        self.engine.connect = self.connect
        return self

    def __exit__(self, *exc):
        self.engine.connect = self.real_connect


def test_a_read_cut_by_a_database_restart_is_read_again_transparently(app, client, company):
    run_id = create_run(client, company)
    with CutOnce(app) as cut:
        response = client.get(f"{SYNC}/status?runId={run_id}", headers=AUTH)
    assert response.status_code == 200 and response.get_json()["runId"] == run_id
    assert cut.cuts == 0


def test_a_write_cut_by_a_database_restart_is_not_retried_but_answers_503(app, client, company):
    run_id = create_run(client, company)
    with CutOnce(app):
        response = client.post(f"{SYNC}/cancel", json={"runId": run_id}, headers=AUTH)
    assert response.status_code == 503 and "Retry-After" in response.headers
    status = client.get(f"{SYNC}/status?runId={run_id}", headers=AUTH).get_json()
    assert status["status"] == "QUEUED"


def test_a_409_names_the_run_and_its_status(client, company):
    run_id = create_run(client, company)
    client.post(f"{SYNC}/cancel", json={"runId": run_id}, headers=AUTH)
    response = client.post(f"{SYNC}/start", json={"runId": run_id}, headers=AUTH)
    assert "CANCELED" in _error(response, 409)
    assert response.get_json()["runId"] == run_id
    assert response.get_json()["status"] == "CANCELED"


def test_a_browser_asking_for_an_unknown_page_gets_html_but_api_paths_stay_json(client):
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = client.get("/no-such-page", headers=browser)
    assert page.status_code == 404 and page.mimetype == "text/html"
    api = client.get("/api/no-such-route", headers=browser)
    assert api.status_code == 404 and api.mimetype == "application/json"
