"""The seed's flow through the HTTP API: create, start, step, status, cancel, resume."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from core.models import Payable, Receivable, SalesOrder, StockItem
from tests.support.api import AUTH, SYNC, create_run, post, step_until_done


def _last_month(today: date) -> tuple[str, date, date]:
    last = date(today.year, today.month, 1) - timedelta(days=1)
    first = date(last.year, last.month, 1)
    return f"{first:%Y-%m}", first, last


def _count(services, model, company_id: str, *where) -> int:
    with services.session_factory() as session:
        stmt = select(func.count()).select_from(model).where(model.companyId == company_id, *where)
        return int(session.scalar(stmt) or 0)


def test_create_start_step_until_done_matches_the_sandbox_truth(
    client, company, sandbox, api_services
):
    month, first, last = _last_month(date.today())
    created = client.post(
        f"{SYNC}/create",
        json={"companyId": company, "mode": "period", "month": month},
        headers=AUTH,
    )
    assert created.status_code == 200
    body = created.get_json()
    assert body["success"] is True and body["status"] == "QUEUED"
    run_id = body["runId"]

    started = post(client, "start", run_id)
    assert started.get_json() == {"success": True, "runId": run_id, "status": "RUNNING"}

    last_step = step_until_done(client, run_id)
    assert set(last_step) == {
        "success", "runId", "status", "currentModule", "progress", "hasMore"
    }  # fmt: skip
    assert last_step["status"] == "DONE" and last_step["hasMore"] is False

    status = client.get(f"{SYNC}/status", query_string={"runId": run_id}, headers=AUTH)
    assert status.status_code == 200
    run = status.get_json()
    assert run["status"] == "DONE" and run["hasMore"] is False
    assert run["mode"] == "period"
    assert (run["startDate"], run["endDate"]) == (first.isoformat(), last.isoformat())
    assert run["startedAt"] and run["finishedAt"] and run["errorMessage"] is None
    assert run["logs"] and run["logs"][0]["message"].startswith("Execução concluída (DONE)")

    truth = sandbox.truth("tok-api", first, last)
    modules = run["progress"]["modules"]
    assert {key: entry["status"] for key, entry in modules.items()} == dict.fromkeys(
        modules, "done"
    )
    expected = {
        "vw_vendas": len(truth.orders),
        # The open position is whole (every emission date); paid bills are the window's.
        "vw_contas_receber_posicao": len(truth.receivables_open_all),
        "vw_contas_pagar": len(truth.payables_open_all),
        "vw_contas_pagas": len(truth.payables_paid),
        "vw_contas_recebidas": len(truth.receivables_paid),
        "vw_estoque": len(truth.products),
    }
    assert {key: entry["processed"] for key, entry in modules.items()} == expected
    assert all(expected.values())
    assert _count(api_services, SalesOrder, company) == len(truth.orders)
    assert _count(api_services, Payable, company) == len(truth.payables_open_all) + len(
        truth.payables_paid
    )
    assert _count(api_services, Receivable, company) == len(truth.receivables_open_all) + len(
        truth.receivables_paid
    )
    assert _count(api_services, StockItem, company) == len(truth.products)


def test_cancel_in_the_middle_keeps_the_data_and_later_steps_do_nothing(
    client, company, sandbox, api_services
):
    run_id = create_run(client, company)
    post(client, "start", run_id)
    first = post(client, "step", run_id).get_json()
    assert first["progress"]["modules"]["vw_vendas"]["status"] == "done"
    orders = _count(api_services, SalesOrder, company)
    assert orders > 0

    canceled = post(client, "cancel", run_id)
    assert canceled.get_json() == {"success": True, "runId": run_id, "status": "CANCELED"}

    calls = sandbox.counters("tok-api").calls
    later = post(client, "step", run_id)
    assert later.status_code == 200
    body = later.get_json()
    assert body["status"] == "CANCELED" and body["hasMore"] is False
    modules = body["progress"]["modules"]
    assert modules["vw_vendas"]["status"] == "done"
    assert {modules[key]["status"] for key in list(modules)[1:]} == {"canceled"}
    assert sandbox.counters("tok-api").calls == calls  # no Tiny call after the cancel
    assert _count(api_services, SalesOrder, company) == orders

    status = client.get(f"{SYNC}/status", query_string={"runId": run_id}, headers=AUTH)
    assert status.get_json()["status"] == "CANCELED"
    again = post(client, "cancel", run_id)
    assert again.status_code == 200  # canceling twice is not an error


def test_status_answers_an_etag_and_304_while_nothing_changed(client, company):
    run_id = create_run(client, company)
    url = f"{SYNC}/status?runId={run_id}"
    first = client.get(url, headers=AUTH)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag
    assert "no-cache" in first.headers["Cache-Control"]

    same = client.get(url, headers={**AUTH, "If-None-Match": etag})
    assert same.status_code == 304 and same.data == b""
    assert same.headers["ETag"] == etag

    post(client, "start", run_id)
    changed = client.get(url, headers={**AUTH, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.get_json()["status"] == "RUNNING"


def test_the_etag_changes_whenever_the_status_body_changes(client, company):
    run_id = create_run(client, company)
    url = f"{SYNC}/status?runId={run_id}"

    def shown() -> tuple[str, dict]:
        response = client.get(url, headers=AUTH)
        body = response.get_json()
        body.pop("durationSeconds")  # the clock, not a change
        return response.headers["ETag"], body

    seen = [shown()]
    post(client, "start", run_id)
    seen.append(shown())
    while True:
        body = post(client, "step", run_id).get_json()
        seen.append(shown())
        if not body["hasMore"]:
            break
    seen.append(shown())  # nothing happened: same ETag, same body
    etags = [etag for etag, _ in seen]
    for (etag_a, body_a), (etag_b, body_b) in zip(seen, seen[1:], strict=False):
        assert (etag_a == etag_b) == (body_a == body_b)
    assert len(set(etags)) == len(etags) - 1


def test_a_second_create_for_the_same_company_is_a_conflict_naming_the_active_run(client, company):
    run_id = create_run(client, company)
    second = client.post(
        f"{SYNC}/create", json={"companyId": company, "mode": "incremental"}, headers=AUTH
    )
    assert second.status_code == 409
    body = second.get_json()
    assert body["success"] is False and body["runId"] == run_id
    assert "in progress" in body["error"]


def test_starting_a_finished_run_is_a_conflict(client, company):
    run_id = create_run(client, company)
    post(client, "start", run_id)
    step_until_done(client, run_id)
    again = post(client, "start", run_id)
    assert again.status_code == 409
    assert again.get_json()["runId"] == run_id
    assert "DONE" in again.get_json()["error"]


def test_stepping_a_run_that_was_not_started_is_a_conflict(client, company):
    run_id = create_run(client, company)
    response = post(client, "step", run_id)
    assert response.status_code == 409
    assert "not been started" in response.get_json()["error"]


def test_starting_twice_is_harmless(client, company):
    run_id = create_run(client, company)
    assert post(client, "start", run_id).get_json()["status"] == "RUNNING"
    assert post(client, "start", run_id).get_json()["status"] == "RUNNING"


def test_resume_reruns_only_the_failed_module(client, company, sandbox):
    sandbox.fail_service("tok-api", "contas.pagar.pesquisa.php", 8)
    run_id = create_run(client, company)
    post(client, "start", run_id)
    failed = step_until_done(client, run_id)
    assert failed["status"] == "FAILED"
    modules = failed["progress"]["modules"]
    assert {k for k, v in modules.items() if v["status"] == "failed"} == {
        "vw_contas_pagar",
        "vw_contas_pagas",
    }
    status = client.get(f"{SYNC}/status?runId={run_id}", headers=AUTH).get_json()
    assert "Contas a pagar" in status["errorMessage"]

    sandbox.clear_faults()
    calls_before = sandbox.counters("tok-api").per_service.copy()
    resumed = post(client, "resume", run_id)
    assert resumed.get_json() == {"success": True, "runId": run_id, "status": "RUNNING"}
    done = step_until_done(client, run_id)
    assert done["status"] == "DONE"
    calls = sandbox.counters("tok-api").per_service - calls_before
    assert set(calls) == {"contas.pagar.pesquisa.php"}


def test_only_a_failed_run_can_be_resumed(client, company):
    run_id = create_run(client, company)
    response = post(client, "resume", run_id)
    assert response.status_code == 409
    assert "only a FAILED run" in response.get_json()["error"]


def test_the_history_is_newest_first_filtered_and_paged_by_cursor(
    client, company, api_services, sandbox
):
    from tests.support.services import new_company

    other = new_company(api_services, sandbox, "tok-other", None)
    ids = []
    for _ in range(3):
        run_id = create_run(client, company)
        post(client, "cancel", run_id)
        ids.append(run_id)
    other_run = create_run(client, other)

    everything = client.get(f"{SYNC}/runs", headers=AUTH).get_json()
    assert [r["runId"] for r in everything["runs"]] == [other_run, *reversed(ids)]
    assert everything["nextCursor"] is None

    page1 = client.get(
        f"{SYNC}/runs", query_string={"companyId": company, "limit": 2}, headers=AUTH
    ).get_json()
    assert [r["runId"] for r in page1["runs"]] == [ids[2], ids[1]]
    page2 = client.get(
        f"{SYNC}/runs",
        query_string={"companyId": company, "limit": 2, "before": page1["nextCursor"]},
        headers=AUTH,
    ).get_json()
    assert [r["runId"] for r in page2["runs"]] == [ids[0]]
    assert page2["nextCursor"] is None

    queued = client.get(f"{SYNC}/runs?status=QUEUED", headers=AUTH).get_json()
    assert [r["runId"] for r in queued["runs"]] == [other_run]
    summary = queued["runs"][0]
    assert summary["companyId"] == other and summary["mode"] == "incremental"


def test_the_log_of_a_run_is_paged_newest_first(client, company):
    run_id = create_run(client, company)
    post(client, "start", run_id)
    step_until_done(client, run_id)
    url = f"{SYNC}/runs/{run_id}/logs"
    everything = client.get(url, headers=AUTH).get_json()
    assert everything["runId"] == run_id and everything["nextCursor"] is None
    messages = [entry["message"] for entry in everything["logs"]]
    assert messages[0].startswith("Execução concluída (DONE)")
    assert messages[-1].startswith("Execução criada")

    pages: list[str] = []
    before = None
    while True:
        query = {"limit": 3, **({"before": before} if before else {})}
        page = client.get(url, query_string=query, headers=AUTH).get_json()
        pages += [entry["message"] for entry in page["logs"]]
        before = page["nextCursor"]
        if before is None:
            break
    assert pages == messages
