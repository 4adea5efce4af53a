"""Runs on real worker processes (`tinysync worker`), from the API to Flower."""

from __future__ import annotations

import functools
import json
import time
import urllib.request

from api import create_app
from core.runs import cancel_run
from tests.support.deployment import ADMIN_TOKEN, Deployment, account, assert_synced, last_month
from tests.support.processes import free_port, wait_until
from worker import enqueue_run

SYNC = "/api/admin/sync/v2"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_the_seeds_flow_through_the_api_on_celery_ends_done_with_the_sandbox_truth(deploy, token):
    d: Deployment = deploy()
    d.worker()
    company = d.company(token)
    app = create_app(
        d.settings, services=d.services, enqueue=functools.partial(enqueue_run, d.celery)
    )
    client = app.test_client()
    month, first_day, last_day = last_month()

    created = client.post(
        f"{SYNC}/create",
        json={"companyId": company, "mode": "period", "month": month},
        headers=AUTH,
    ).get_json()
    assert created["status"] == "QUEUED"
    run_id = created["runId"]
    started = client.post(f"{SYNC}/start", json={"runId": run_id}, headers=AUTH).get_json()
    assert started["status"] == "RUNNING"

    def finished() -> dict | None:
        body = client.get(f"{SYNC}/status?runId={run_id}", headers=AUTH).get_json()
        return None if body["hasMore"] else body

    status = wait_until(finished, 60, "the run finishing on the worker")
    assert status["status"] == "DONE", (status, d.processes_output())
    assert {m["status"] for m in status["progress"]["modules"].values()} == {"done"}
    assert_synced(d.services, company, d.sandbox.truth(token, first_day, last_day))


def test_cancel_in_the_middle_of_a_module_stops_before_the_next_tiny_call(deploy, token):
    d: Deployment = deploy(TINY_MIN_INTERVAL="30", TINY_CONCURRENCY="1")
    d.worker()
    company = d.company(token, account(orders=300))
    run_id = d.start(company)

    def enriching() -> bool:
        entry = d.run(run_id).progressJson["modules"]["vw_vendas"]
        return entry["status"] == "running" and entry.get("processed", 0) > 0

    wait_until(enriching, 30, "vw_vendas listing its first page")
    with d.services.session_factory() as session:
        cancel_run(session, run_id)
    calls_at_cancel = d.sandbox.counters(token).calls

    def stopped() -> bool:
        run = d.run(run_id)
        return run.leaseOwner is None and run.progressJson["modules"]["vw_vendas"]["status"] != (
            "running"
        )

    wait_until(stopped, 10, "the worker letting go of the canceled run")
    time.sleep(0.5)  # the rest of the chain runs, and must not call Tiny
    # One call may have been on the wire while the cancel committed; none may start after it.
    assert d.sandbox.counters(token).calls <= calls_at_cancel + 1
    run = d.run(run_id)
    assert run.status == "CANCELED"
    assert {m["status"] for m in run.progressJson["modules"].values()} == {"canceled"}
    assert any("parou antes da próxima chamada ao Tiny" in m for m in d.logs(run_id))


def test_flowers_api_lists_the_module_tasks_with_their_arguments(deploy, token):
    d: Deployment = deploy()
    port = free_port()
    d.flower(port)
    d.worker()
    run_id = d.start(d.company(token))
    assert d.wait_finished(run_id).status == "DONE"

    def tasks() -> dict | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=5) as answer:
            listed = json.loads(answer.read())
        done = [t for t in listed.values() if t["name"] == "tinysync.finalize"]
        return listed if done and done[0]["state"] == "SUCCESS" else None

    listed = wait_until(tasks, 15, "Flower seeing the run's tasks")
    modules = [t for t in listed.values() if t["name"] == "tinysync.module"]
    assert len(modules) == 6
    assert {t["state"] for t in modules} == {"SUCCESS"}
    for task in modules:
        assert run_id in task["args"]
    assert any("'vw_vendas'" in t["args"] for t in modules)
    assert any("'vw_estoque'" in t["args"] for t in modules)
