"""The run lifecycle: transitions, validation of what people ask, one active run per company."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from api.run_views import run_status
from core.errors import ActiveRunExists, NotFoundError, RunStateError, ValidationError
from core.models import SyncRun
from core.runs import (
    RunStatus,
    cancel_run,
    create_run,
    expire_run,
    get_run,
    list_logs,
    list_runs,
    resolve_window,
    resume_run,
    start_run,
    transition,
)
from core.settings import Settings
from tests.support.services import new_company, step_until_done

TODAY = date(2026, 11, 29)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mode": "fast"}, "mode 'fast' is unknown"),
        ({"mode": "period", "month": "2024-13"}, "does not exist"),
        ({"mode": "period", "month": "2024-1"}, "not in the form YYYY-MM"),
        ({"mode": "period", "month": "2027-01"}, "in the future"),
        ({"mode": "period", "month": 202412}, "must be text"),
        ({"mode": "period"}, "needs month"),
        ({"mode": "period", "start_date": "2024-01-01", "end_date": "2025-06-01"}, "12 months"),
        ({"mode": "period", "start_date": "2024-05-01", "end_date": "2024-04-01"}, "after endDate"),
        ({"mode": "period", "start_date": "2024-02-30", "end_date": "2024-04-01"}, "not a date"),
        ({"mode": "incremental", "month": "2024-01"}, "takes no month"),
    ],
)
def test_bad_periods_are_refused_with_a_message_a_person_understands(kwargs, words):
    with pytest.raises(ValidationError, match=words):
        resolve_window(Settings(), today=TODAY, **kwargs)


def test_a_month_covers_its_first_to_last_day():
    _, window = resolve_window(Settings(), "period", month="2024-02", today=TODAY)
    assert (window.start, window.end) == (date(2024, 2, 1), date(2024, 2, 29))
    _, window = resolve_window(Settings(sync_incremental_days=30), "incremental", today=TODAY)
    assert (window.start, window.end) == (date(2026, 10, 30), TODAY)


def test_create_start_step_finish_is_the_seed_flow(services, sandbox):
    company = new_company(services, sandbox, "tok-flow")
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        assert run.status == "QUEUED"
        with pytest.raises(RunStateError):
            from core.steps import run_step

            run_step(services.session_factory, services.settings, services.client, run.id)
        assert start_run(session, run.id).status == "RUNNING"
        assert start_run(session, run.id).status == "RUNNING"  # idempotent
    result = step_until_done(services, run.id)
    assert result.status == "DONE" and result.has_more is False
    with services.session_factory() as session:
        status = run_status(session, run.id)
        assert status["finishedAt"] and status["startedAt"]
        assert status["logs"][0]["message"].startswith("Execução concluída (DONE)")
        with pytest.raises(RunStateError, match="cannot be started"):
            start_run(session, run.id)
        with pytest.raises(RunStateError, match="can no longer be canceled"):
            cancel_run(session, run.id)


def test_a_second_active_run_for_a_company_is_refused_naming_the_first(services, sandbox):
    company = new_company(services, sandbox, "tok-one")
    with services.session_factory() as session:
        first = create_run(session, services.settings, company_id=company, mode="incremental")
        with pytest.raises(ActiveRunExists) as info:
            create_run(session, services.settings, company_id=company, mode="incremental")
        assert info.value.run_id == first.id


def test_concurrent_creates_yield_exactly_one_active_run(services, sandbox):
    company = new_company(services, sandbox, "tok-race-create")
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def create():
        barrier.wait()
        with services.session_factory() as session:
            try:
                create_run(session, services.settings, company_id=company, mode="incremental")
                outcomes.append("created")
            except ActiveRunExists:
                outcomes.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("created") == 1
    assert outcomes.count("conflict") == 5
    with services.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 1


def test_unknown_and_malformed_ids_are_told_apart(services, sandbox):
    with services.session_factory() as session:
        with pytest.raises(ValidationError, match="not a valid id"):
            run_status(session, "not-a-uuid")
        with pytest.raises(NotFoundError, match="not found"):
            run_status(session, "00000000-0000-4000-8000-000000000000")
        with pytest.raises(NotFoundError, match="company"):
            create_run(
                session,
                services.settings,
                company_id="00000000-0000-4000-8000-000000000000",
                mode="incremental",
            )
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 0


def test_a_failed_run_resumes_only_its_failed_modules(services, sandbox):
    company = new_company(services, sandbox, "tok-resume")
    sandbox.fail_service("tok-resume", "produtos.pesquisa.php", 5)
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        start_run(session, run.id)
    assert step_until_done(services, run.id).status == "FAILED"
    sandbox.clear_faults()
    calls_before = sandbox.counters("tok-resume").calls
    with services.session_factory() as session:
        resumed = resume_run(session, run.id)
        assert resumed.status == "RUNNING"
        assert resumed.progressJson["modules"]["vw_estoque"]["status"] == "pending"
        assert resumed.progressJson["modules"]["vw_vendas"]["status"] == "done"
    assert step_until_done(services, run.id).status == "DONE"
    per_service = sandbox.counters("tok-resume").per_service
    assert per_service.get("pedidos.pesquisa.php", 0) <= calls_before  # sales not re-run
    with services.session_factory() as session:
        with pytest.raises(RunStateError, match="only a FAILED run"):
            resume_run(session, run.id)


def test_history_is_newest_first_filtered_and_paginated(services, sandbox):
    company = new_company(services, sandbox, "tok-hist")
    ids = []
    with services.session_factory() as session:
        for _ in range(5):
            run = create_run(session, services.settings, company_id=company, mode="incremental")
            cancel_run(session, run.id)
            ids.append(run.id)
        page1, cursor = list_runs(session, company_id=company, limit=2)
        page2, cursor2 = list_runs(session, company_id=company, limit=2, before=cursor)
        page3, cursor3 = list_runs(session, company_id=company, limit=2, before=cursor2)
        got = [r.id for r in page1 + page2 + page3]
        assert got == list(reversed(ids))
        assert cursor3 is None
        assert list_runs(session, status="DONE")[0] == []
        with pytest.raises(ValidationError, match="status 'weird' is unknown"):
            list_runs(session, status="weird")
        logs, _ = list_logs(session, ids[0], limit=10)
        assert [entry.message for entry in logs] == [
            "Cancelada pelo usuário",
            ids and logs[1].message,
        ]


def test_expiring_a_queued_run_cancels_it_and_a_stale_one_fails_and_can_resume(services, sandbox):
    company = new_company(services, sandbox, "tok-expire")
    with services.session_factory() as session:
        never = create_run(session, services.settings, company_id=company, mode="incremental")
        expired = expire_run(session, never.id, reason="never started")
        assert expired.status == "CANCELED"
        assert {m["status"] for m in expired.progressJson["modules"].values()} == {"canceled"}
        with pytest.raises(RunStateError):
            expire_run(session, never.id, reason="again")
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        start_run(session, run.id)
    from core.steps import run_step

    step = run_step(
        services.session_factory, services.settings, services.client, run.id, budget_seconds=0
    )
    assert step.status == "RUNNING" and step.executed == "vw_vendas"
    with services.session_factory() as session:
        failed = expire_run(session, run.id, reason="no executor for an hour")
        assert failed.status == "FAILED" and failed.leaseOwner is None
        assert "no executor for an hour" in failed.errorMessage
        statuses = {k: m["status"] for k, m in failed.progressJson["modules"].items()}
        assert set(statuses.values()) == {"failed"}  # running and pending ones alike
        assert resume_run(session, run.id).status == "RUNNING"
    assert step_until_done(services, run.id).status == "DONE"


def test_a_transition_from_the_wrong_status_is_refused_and_changes_nothing(services, sandbox):
    company = new_company(services, sandbox, "tok-wrong")
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        cancel_run(session, run.id)
        with pytest.raises(RunStateError) as info:
            transition(session, run.id, RunStatus.QUEUED, RunStatus.RUNNING)
        assert info.value.status == "CANCELED"
        session.rollback()
        assert get_run(session, run.id).status == "CANCELED"
        assert get_run(session, run.id).startedAt is None
