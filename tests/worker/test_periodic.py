"""Beat's periodic sync: one run per company, however many beats tick at once."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

from core.companies import set_active
from core.models import SyncRun
from tests.support.deployment import Deployment
from worker import periodic


def _tick(d: Deployment) -> dict[str, Any]:
    """What one beat tick does: the periodic task, executed here as a worker would."""
    result: dict[str, Any] = d.celery.tasks[periodic.TASK].apply().get()
    return result


def test_two_beat_ticks_at_the_same_moment_create_one_run_per_company(deploy, token):
    d: Deployment = deploy()
    companies = {d.company(f"{token}-{i}") for i in range(6)}
    gate = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def beat() -> None:
        gate.wait()
        results.append(_tick(d))

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    created = [run for r in results for run in r["created"]]
    skipped = [company for r in results for company in r["skipped"]]
    assert len(created) == 6 and sorted(skipped) == sorted(companies)
    with d.services.session_factory() as session:
        counts = session.execute(
            select(SyncRun.companyId, func.count()).group_by(SyncRun.companyId)
        )
        per_company = {company: count for company, count in counts}
        statuses = set(session.scalars(select(SyncRun.status)))
    assert per_company == {company: 1 for company in companies}
    assert statuses == {"RUNNING"}  # started and handed to the workers


def test_a_tick_skips_busy_and_inactive_companies_and_starts_the_others(deploy, token):
    d: Deployment = deploy()
    busy = d.company(f"{token}-busy")
    idle = d.company(f"{token}-idle")
    asleep = d.company(f"{token}-asleep")
    with d.services.session_factory() as session:
        set_active(session, asleep, False)
        session.commit()
    busy_run = d.start(busy)
    result = _tick(d)
    assert result["skipped"] == {busy: busy_run}
    with d.services.session_factory() as session:
        started = session.scalars(select(SyncRun).where(SyncRun.id.in_(result["created"]))).all()
        assert [(run.companyId, run.mode, run.triggeredByUserId) for run in started] == [
            (idle, "incremental", "beat")
        ]
    # Syncs that outlast the interval (no worker runs here): the next tick starts nothing.
    assert _tick(d)["created"] == []
