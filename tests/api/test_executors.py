"""Inline and Celery execution behind the same routes, and the cron route in both."""

from __future__ import annotations

from api import create_app
from tests.support.api import AUTH, CRON, SYNC, create_run, post, small_account, step_until_done
from tests.support.services import new_company


def test_with_celery_start_enqueues_the_run_once(celery_client, celery_services, sandbox, queue):
    company = new_company(celery_services, sandbox, "tok-celery", small_account())
    run_id = create_run(celery_client, company)
    assert post(celery_client, "start", run_id).get_json()["status"] == "RUNNING"
    assert post(celery_client, "start", run_id).get_json()["status"] == "RUNNING"
    assert queue == [run_id]


def test_with_celery_step_executes_nothing_and_answers_the_same_body(
    celery_client, celery_services, sandbox
):
    company = new_company(celery_services, sandbox, "tok-celery", small_account())
    run_id = create_run(celery_client, company)
    queued = post(celery_client, "step", run_id).get_json()
    assert queued["status"] == "QUEUED" and queued["hasMore"] is True
    post(celery_client, "start", run_id)
    calls = sandbox.counters().calls
    body = post(celery_client, "step", run_id).get_json()
    assert set(body) == {"success", "runId", "status", "currentModule", "progress", "hasMore"}
    assert body["status"] == "RUNNING" and body["hasMore"] is True
    assert {m["status"] for m in body["progress"]["modules"].values()} == {"pending"}
    assert sandbox.counters().calls == calls


def test_with_celery_and_no_queue_wired_start_is_503_and_the_run_stays_queued(
    celery_services, sandbox
):
    client = create_app(services=celery_services).test_client()
    company = new_company(celery_services, sandbox, "tok-celery", small_account())
    run_id = create_run(client, company)
    response = post(client, "start", run_id)
    assert response.status_code == 503
    assert response.get_json()["error"] == "the worker queue is not configured"
    status = client.get(f"{SYNC}/status?runId={run_id}", headers=AUTH).get_json()
    assert status["status"] == "QUEUED"


def test_when_the_broker_is_down_start_cancels_the_run_instead_of_leaving_it_running(
    celery_services, sandbox
):
    def broken(run_id: str) -> None:
        raise ConnectionError("broker down")

    client = create_app(services=celery_services, enqueue=broken).test_client()
    company = new_company(celery_services, sandbox, "tok-celery", small_account())
    run_id = create_run(client, company)
    response = post(client, "start", run_id)
    assert response.status_code == 503
    assert "canceled" in response.get_json()["error"]
    status = client.get(f"{SYNC}/status?runId={run_id}", headers=AUTH).get_json()
    assert status["status"] == "CANCELED"
    assert "ConnectionError" in status["logs"][0]["message"]
    assert create_run(client, company)  # the company is free for a new run


def test_with_celery_resume_enqueues_the_run_again(celery_client, celery_services, sandbox, queue):
    from core.steps import run_step

    company = new_company(celery_services, sandbox, "tok-celery", small_account())
    sandbox.fail_service("tok-celery", "produtos.pesquisa.php", 8)
    run_id = create_run(celery_client, company)
    post(celery_client, "start", run_id)
    # The worker's part, done here by the same core function the Celery tasks call.
    while run_step(
        celery_services.session_factory, celery_services.settings, celery_services.client, run_id
    ).has_more:
        pass
    assert post(celery_client, "step", run_id).get_json()["status"] == "FAILED"
    assert post(celery_client, "resume", run_id).get_json()["status"] == "RUNNING"
    assert queue == [run_id, run_id]


def test_cron_with_celery_enqueues_a_run_per_active_company_and_skips_busy_ones(
    celery_client, celery_services, sandbox, queue
):
    busy = new_company(celery_services, sandbox, "tok-busy", small_account())
    idle = new_company(celery_services, sandbox, "tok-idle", small_account())
    busy_run = create_run(celery_client, busy)
    response = celery_client.post("/api/cron/sync", headers=CRON)
    assert response.status_code == 200
    body = response.get_json()
    assert body["executor"] == "celery" and body["steps"] == []
    assert [(c["companyId"], c["status"]) for c in body["created"]] == [(idle, "RUNNING")]
    assert body["skipped"] == [{"companyId": busy, "activeRunId": busy_run}]
    assert queue == [body["created"][0]["runId"]]
    status = celery_client.get(f"{SYNC}/status?runId={queue[0]}", headers=AUTH).get_json()
    assert status["mode"] == "incremental" and status["triggeredByUserId"] == "cron"


def test_cron_inline_steps_the_new_and_the_running_runs_within_one_budget(
    client, api_services, sandbox
):
    first = new_company(api_services, sandbox, "tok-one", small_account())
    second = new_company(api_services, sandbox, "tok-two", small_account())
    running = create_run(client, second)
    post(client, "start", running)
    queued_company = new_company(api_services, sandbox, "tok-three", small_account())
    queued = create_run(client, queued_company)  # a person created it but has not started it

    body = client.post("/api/cron/sync", headers=CRON).get_json()
    assert body["executor"] == "inline"
    assert [c["companyId"] for c in body["created"]] == [first]
    new_run = body["created"][0]["runId"]
    assert {(s["companyId"], s["activeRunId"]) for s in body["skipped"]} == {
        (second, running),
        (queued_company, queued),
    }
    stepped = {step["runId"] for step in body["steps"]}
    assert stepped == {new_run, running}  # the QUEUED run waits for its person
    assert body["steps"][0]["runId"] == new_run
    finals = {s["runId"]: s["status"] for s in body["steps"] if not s["hasMore"]}
    assert finals == {new_run: "DONE", running: "DONE"}

    again = client.post("/api/cron/sync", headers=CRON).get_json()
    assert {c["companyId"] for c in again["created"]} == {first, second}


def test_cron_inline_stops_at_the_step_budget(db_url, sandbox):
    from tests.support.api import api_settings
    from tests.support.services import make_services

    services = make_services(api_settings(db_url, sync_step_budget_seconds=0.0), sandbox)
    client = create_app(services=services).test_client()
    new_company(services, sandbox, "tok-slow", small_account())
    body = client.post("/api/cron/sync", headers=CRON).get_json()
    assert len(body["created"]) == 1 and body["steps"] == []
    run_id = body["created"][0]["runId"]
    assert step_until_done(client, run_id)["status"] == "DONE"  # the run is intact
    services.close()
