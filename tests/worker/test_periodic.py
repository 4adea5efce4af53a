"""Beat's periodic sync: one run per company, however many beats tick at once."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from core.companies import set_active
from core.models import SyncRun
from core.runs import cancel_run
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


# -- the spread: each company at its own slot of the interval (pure planning, no sleeping) --
INTERVAL = timedelta(minutes=30)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _ticks(start: datetime, minutes: int) -> list[datetime]:
    return [start + timedelta(minutes=m) for m in range(1, minutes + 1)]


def test_a_hundred_companies_that_last_ran_together_are_due_spread_over_the_interval():
    companies = [str(uuid.UUID(int=i + 1)) for i in range(100)]
    last: dict[str, datetime | None] = dict.fromkeys(companies, T0)
    per_tick = []
    for now in _ticks(T0, 30):  # one beat tick a minute over one interval
        due = periodic.due_companies(last, now, INTERVAL)
        per_tick.append(len(due))
        last.update(dict.fromkeys(due, now))  # each due company's run is created at the tick
    # Every company once in the interval, never all at once: 100 over 30 ticks is 3.3 a tick.
    assert sum(per_tick) == 100
    assert max(per_tick) <= 10, per_tick
    assert sum(1 for n in per_tick if n) >= 20, per_tick
    # The next interval repeats the same slots: each company again once, at the same tick.
    again = []
    for now in _ticks(T0 + INTERVAL, 30):
        due = periodic.due_companies(last, now, INTERVAL)
        again.append(len(due))
        last.update(dict.fromkeys(due, now))
    assert again == per_tick


def test_a_second_tick_at_the_same_moment_finds_nothing_more_due():
    company = str(uuid.UUID(int=7))
    slot = periodic.latest_slot(company, T0 + INTERVAL, INTERVAL)
    assert periodic.due_companies({company: T0 - INTERVAL}, slot, INTERVAL) == [company]
    # The run the first tick created counts as its latest once it finishes.
    assert periodic.due_companies({company: slot}, slot, INTERVAL) == []
    assert periodic.due_companies({company: slot}, slot + INTERVAL / 2, INTERVAL) == []


def test_a_company_never_synced_is_due_at_once_and_missed_slots_are_caught_up():
    company = str(uuid.UUID(int=11))
    assert periodic.due_companies({company: None}, T0, INTERVAL) == [company]
    # Beat was down for two hours: the company's run is due at the first tick after.
    assert periodic.due_companies({company: T0}, T0 + 4 * INTERVAL, INTERVAL) == [company]


def test_the_slot_is_stable_and_differs_between_companies():
    a, b = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    assert periodic.slot_offset(a, INTERVAL) == periodic.slot_offset(a, INTERVAL)
    assert periodic.slot_offset(a, INTERVAL) != periodic.slot_offset(b, INTERVAL)
    for company in (a, b):
        offset = periodic.slot_offset(company, INTERVAL)
        assert 0 <= offset < INTERVAL.total_seconds()
        assert periodic.latest_slot(company, T0, INTERVAL) <= T0
        assert T0 - periodic.latest_slot(company, T0, INTERVAL) < INTERVAL


def test_with_an_interval_a_tick_starts_only_the_companies_whose_slot_came(deploy, token):
    d: Deployment = deploy(SYNC_BEAT_INTERVAL_MINUTES="30")
    companies = [d.company(f"{token}-{i}") for i in range(3)]
    with d.services.session_factory() as session:
        for company in companies:  # each ran once already (canceled runs count as finished)
            cancel_run(session, d.start(company))
        last = max(session.scalars(select(SyncRun.createdAt)))
    just_after = periodic.sync_all_companies(d.celery, now=last + timedelta(milliseconds=1))
    assert just_after["created"] == [] and just_after["waiting"] == 3
    a_whole_interval_later = last + timedelta(minutes=30)
    result = periodic.sync_all_companies(d.celery, now=a_whole_interval_later)
    with d.services.session_factory() as session:
        started = session.scalars(select(SyncRun).where(SyncRun.id.in_(result["created"]))).all()
        assert sorted(run.companyId for run in started) == sorted(companies)
    assert result["waiting"] == 0
