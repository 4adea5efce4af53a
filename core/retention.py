"""Retention: old run logs and old runs are deleted, the latest run of each company kept.

`SYNC_LOG_RETENTION_DAYS` (default 90): log lines older than that go, except the lines of
each company's latest run. `SYNC_RUN_RETENTION_DAYS` (default 365): finished runs that ended
(or were created) longer ago go, with their logs, except each company's latest run, whatever
its age. Active runs are never touched. UI sessions that can no longer count go too. Run by
beat once a day (`worker/retention.py`) and by `tinysync prune`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session, aliased

from core.models import SyncRun, SyncRunLog, utcnow
from core.runs.model import ACTIVE_STATUSES
from core.sessions import prune_sessions
from core.settings import Settings

#: Rows deleted per statement, so a first prune of a big table does not hold long locks.
BATCH = 5000


@dataclass(frozen=True)
class Pruned:
    """What one prune deleted."""

    logs: int
    runs: int
    sessions: int


def _latest_runs() -> Select[Any]:
    """The id of each company's latest run (by createdAt)."""
    newer = aliased(SyncRun)
    return select(SyncRun.id).where(
        ~select(newer.id)
        .where(newer.companyId == SyncRun.companyId, newer.createdAt > SyncRun.createdAt)
        .exists()
    )


def prune(session: Session, settings: Settings, *, now: datetime | None = None) -> Pruned:
    """Delete what the retention settings let go; commits after every batch."""
    now = now or utcnow()
    keep = set(session.scalars(_latest_runs()))
    runs_before = now - timedelta(days=settings.sync_run_retention_days)
    logs_before = now - timedelta(days=settings.sync_log_retention_days)
    active = [status.value for status in ACTIVE_STATUSES]

    runs = 0
    while True:
        ids = [
            run_id
            for run_id in session.scalars(
                select(SyncRun.id)
                .where(
                    SyncRun.status.not_in(active),
                    func.coalesce(SyncRun.finishedAt, SyncRun.createdAt) < runs_before,
                    SyncRun.id.not_in(keep),
                )
                .limit(BATCH)
            )
        ]
        if not ids:
            break
        session.execute(delete(SyncRunLog).where(SyncRunLog.runId.in_(ids)))
        session.execute(delete(SyncRun).where(SyncRun.id.in_(ids)))
        session.commit()
        runs += len(ids)

    logs = 0
    while True:
        ids = list(
            session.scalars(
                select(SyncRunLog.id)
                .where(
                    SyncRunLog.timestamp < logs_before,
                    SyncRunLog.runId.not_in(keep),
                )
                .limit(BATCH)
            )
        )
        if not ids:
            break
        session.execute(delete(SyncRunLog).where(SyncRunLog.id.in_(ids)))
        session.commit()
        logs += len(ids)

    sessions = prune_sessions(session, settings, now)
    session.commit()
    return Pruned(logs=logs, runs=runs, sessions=sessions)
