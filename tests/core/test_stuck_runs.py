"""Runs never block automation: a run never started, or an inline run whose executor went
away, is given up with a logged reason, so the company's next create proceeds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import ActiveRunExists
from core.models import SyncRun, SyncRunLog, utcnow
from core.runs import (
    RunStatus,
    create_run,
    expire_stuck_runs,
    get_run,
    resume_run,
    start_incremental_runs,
    start_run,
)
from tests.support.services import new_company, step_until_done


def _age(services, run_id: str, **fields_ago: timedelta) -> None:
    with services.session_factory() as session:
        run = session.get(SyncRun, run_id)
        for name, ago in fields_ago.items():
            setattr(run, name, utcnow() - ago)
        session.commit()


def _logs(services, run_id: str) -> list[str]:
    with services.session_factory() as session:
        return list(session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id)))


def test_a_run_never_started_is_canceled_when_the_next_run_is_created(services, sandbox):
    company = new_company(services, sandbox, "tok-queued")
    settings = services.settings.with_(sync_queued_timeout_seconds=900)
    with services.session_factory() as session:
        first = create_run(session, settings, company_id=company, mode="incremental").id
        with pytest.raises(ActiveRunExists):  # not overdue yet: it still blocks
            create_run(session, settings, company_id=company, mode="incremental")
    _age(services, first, createdAt=timedelta(seconds=901))
    with services.session_factory() as session:
        outcome = start_incremental_runs(session, settings, triggered_by="beat")
        assert [run.companyId for run in outcome.created] == [company]
        assert get_run(session, first).status == RunStatus.CANCELED
    assert any("não começou em 900 s" in line for line in _logs(services, first))


def test_an_abandoned_inline_run_fails_and_can_be_resumed(services, sandbox):
    company = new_company(services, sandbox, "tok-abandoned")
    settings = services.settings.with_(sync_abandoned_after_seconds=600)
    with services.session_factory() as session:
        run_id = create_run(session, settings, company_id=company, mode="incremental").id
        start_run(session, run_id)
    _age(services, run_id, updatedAt=timedelta(seconds=599))
    with services.session_factory() as session:
        assert expire_stuck_runs(session, settings) == []  # quiet, but not for long enough
    _age(services, run_id, updatedAt=timedelta(seconds=601))
    with services.session_factory() as session:
        newer = create_run(session, settings, company_id=company, mode="incremental")
        assert newer.status == RunStatus.QUEUED
        old = get_run(session, run_id)
        assert old.status == RunStatus.FAILED
        assert "sem executor e sem progresso por 600 s" in (old.errorMessage or "")


def test_a_run_holding_a_live_lease_is_never_given_up(services, sandbox):
    company = new_company(services, sandbox, "tok-live")
    settings = services.settings.with_(sync_abandoned_after_seconds=1)
    with services.session_factory() as session:
        run_id = create_run(session, settings, company_id=company, mode="incremental").id
        start_run(session, run_id)
        run = session.get(SyncRun, run_id)
        run.leaseOwner, run.leaseExpiresAt = "someone", utcnow() + timedelta(seconds=60)
        run.updatedAt = utcnow() - timedelta(seconds=30)
        session.commit()
        assert expire_stuck_runs(session, settings) == []
        assert get_run(session, run_id).status == RunStatus.RUNNING


def test_a_resumed_abandoned_run_finishes(services, sandbox):
    company = new_company(services, sandbox, "tok-resume")
    settings = services.settings.with_(sync_abandoned_after_seconds=60)
    with services.session_factory() as session:
        run_id = create_run(session, settings, company_id=company, mode="incremental").id
        start_run(session, run_id)
    _age(services, run_id, updatedAt=timedelta(seconds=120))
    with services.session_factory() as session:
        assert expire_stuck_runs(session, settings, company_id=company) == [run_id]
        resume_run(session, run_id)
    assert step_until_done(services, run_id).status == RunStatus.DONE
