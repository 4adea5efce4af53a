"""The reaper: beat's periodic look for runs that stopped moving, which it sends again.

A RUNNING run stops moving when its executor died in the middle of a module (its lease
expired: core's `find_stale_runs`), or when the message of its next module was lost between
two modules (no lease, and no progress for SYNC_LEASE_SECONDS), e.g. a Redis restarted without
persistence. The reaper sends the run's remaining modules again; they resume from their page
checkpoints. Claiming a run is a conditional UPDATE of its `updatedAt`, so two reapers (two
beat processes) send it once, and a run is sent again at most once per lease period.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from celery.utils.log import get_task_logger
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.models import SyncRun, utcnow
from core.runs import RunStatus, add_log, get_run
from core.steps import find_stale_runs
from worker.tasks import enqueue_run, remaining_modules

if TYPE_CHECKING:
    from worker.app import TinySyncCelery

TASK = "tinysync.reap_stale_runs"

log = get_task_logger(__name__)


def reap_stale_runs(celery: TinySyncCelery) -> list[str]:
    """Send again the remaining modules of every run that stopped moving; returns their ids."""
    svc = celery.services
    lease_seconds = svc.settings.sync_lease_seconds
    now = utcnow()
    quiet_since = now - timedelta(seconds=lease_seconds)
    sent: list[str] = []
    with svc.session_factory() as session:
        dead = set(find_stale_runs(session))
        idle = set(
            session.scalars(
                select(SyncRun.id).where(
                    SyncRun.status == RunStatus.RUNNING.value,
                    SyncRun.leaseOwner.is_(None),
                    SyncRun.updatedAt < quiet_since,
                )
            )
        )
        for run_id in sorted(dead | idle):
            if not _claim(session, run_id, now, quiet_since):
                continue  # it moved meanwhile, or another reaper claimed it
            modules = remaining_modules(get_run(session, run_id).progressJson)
            why = (
                "its executor stopped heartbeating"
                if run_id in dead
                else f"no executor and no progress for {lease_seconds:g}s (a lost message)"
            )
            what = ", ".join(modules) if modules else "the finaliser"
            add_log(session, run_id, "warn", f"reaper: sent {what} to the workers again: {why}")
            session.commit()
            enqueue_run(celery, run_id, modules)
            log.warning("run %s: sent %s again: %s", run_id, what, why)
            sent.append(run_id)
    return sent


def _claim(session: Session, run_id: str, now: datetime, quiet_since: datetime) -> bool:
    """Mark a stalled run as handled now; False when it moved or another reaper took it."""
    result = session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id,
            SyncRun.status == RunStatus.RUNNING.value,
            SyncRun.updatedAt < quiet_since,
            or_(SyncRun.leaseOwner.is_(None), SyncRun.leaseExpiresAt < now),
        )
        .values(updatedAt=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return False
    return True
