"""The lease: which executor may work on a RUNNING run right now, and until when.

An executor takes the lease (a conditional UPDATE: free, or expired), renews it with every
page it saves, and gives it back at the end of its step. A holder that stops heartbeating
loses it when it expires: the next executor takes it over and the module resumes from its
page checkpoint. Every write here is conditional on the run being RUNNING and/or on the
caller holding the lease, so a canceled run or a taken-over executor can never save again.

The reaper finds runs that stopped moving (`stale_runs`) and claims one (`claim_stale`)
before sending it to the workers again.
"""

from __future__ import annotations

import enum
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.models import SyncRun, utcnow
from core.runs.model import RunStatus


class StopReason(enum.StrEnum):
    """Why an executor must stop working on a run."""

    CANCELED = "canceled"
    LEASE_LOST = "lease lost"


class Staleness(enum.StrEnum):
    """Why the reaper thinks a RUNNING run stopped moving."""

    #: Its executor died mid-module: the lease expired.
    LEASE_EXPIRED = "lease expired"
    #: Nobody holds it and nothing moved for a lease period: the next module's message was
    #: lost between two modules.
    IDLE = "idle"


@dataclass(frozen=True)
class StaleRun:
    run_id: str
    why: Staleness


def new_owner() -> str:
    """A name for an executor, unique per call, readable in the database."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def take(session: Session, run_id: str, owner: str, lease_seconds: float) -> bool | None:
    """Take the lease of a RUNNING run; None if someone else holds a live one.

    Otherwise returns whether it was taken over from an executor that stopped heartbeating
    (which counts in `resumeCount`). Commits.
    """
    now = utcnow()
    previous = session.scalar(select(SyncRun.leaseOwner).where(SyncRun.id == run_id))
    result = session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id,
            SyncRun.status == RunStatus.RUNNING.value,
            or_(SyncRun.leaseOwner.is_(None), SyncRun.leaseExpiresAt < now),
        )
        .values(
            leaseOwner=owner,
            leaseExpiresAt=now + timedelta(seconds=lease_seconds),
            heartbeatAt=now,
            resumeCount=SyncRun.resumeCount + (1 if previous is not None else 0),
        )
    )
    if _rowcount(result) != 1:
        session.rollback()
        return None
    session.commit()
    return previous is not None


def heartbeat(session: Session, run_id: str, owner: str, lease_seconds: float) -> None:
    """Renew the lease for `lease_seconds` from now, if `owner` still holds it (the caller
    commits)."""
    now = utcnow()
    session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.leaseOwner == owner)
        .values(leaseExpiresAt=now + timedelta(seconds=lease_seconds), heartbeatAt=now)
    )


def save(
    session: Session,
    run_id: str,
    owner: str,
    *,
    lease_seconds: float,
    progress: dict[str, Any],
    checkpoints: dict[str, Any],
    module: str,
    calls: int,
) -> bool:
    """The per-page heartbeat: save progress and checkpoints and renew the lease.

    Only while the run is RUNNING and `owner` holds the lease; False otherwise, and the caller
    rolls back the page written in the same transaction. The caller commits.
    """
    now = utcnow()
    result = session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id,
            SyncRun.status == RunStatus.RUNNING.value,
            SyncRun.leaseOwner == owner,
        )
        .values(
            progressJson=progress,
            checkpointJson=checkpoints,
            currentModule=module,
            leaseExpiresAt=now + timedelta(seconds=lease_seconds),
            heartbeatAt=now,
            updatedAt=now,
            tinyCalls=SyncRun.tinyCalls + calls,
        )
    )
    return _rowcount(result) == 1


def standing(session: Session, run_id: str, owner: str) -> StopReason | None:
    """None while the run is RUNNING under `owner`'s lease; else why `owner` must stop."""
    row = session.execute(
        select(SyncRun.status, SyncRun.leaseOwner).where(SyncRun.id == run_id)
    ).one()
    if row.status != RunStatus.RUNNING:
        return StopReason.CANCELED
    if row.leaseOwner != owner:
        return StopReason.LEASE_LOST
    return None


def release(session: Session, run_id: str, owner: str) -> None:
    """Give the lease back, if `owner` still holds it. Commits."""
    session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.leaseOwner == owner)
        .values(leaseOwner=None, leaseExpiresAt=None)
    )
    session.commit()


def release_canceled(
    session: Session, run_id: str, owner: str, *, progress: dict[str, Any], calls: int
) -> bool:
    """The holder of a run canceled under it stops: its last progress and calls are saved
    with the unfinished modules canceled, and the lease given back (the caller commits)."""
    result = session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id,
            SyncRun.status == RunStatus.CANCELED.value,
            SyncRun.leaseOwner == owner,
        )
        .values(
            progressJson=progress,
            currentModule=None,
            leaseOwner=None,
            leaseExpiresAt=None,
            tinyCalls=SyncRun.tinyCalls + calls,
            updatedAt=utcnow(),
        )
    )
    return _rowcount(result) == 1


def stale_runs(session: Session, lease_seconds: float) -> list[StaleRun]:
    """RUNNING runs that stopped moving: an expired lease, or no lease and no progress for
    `lease_seconds`. Sorted by id."""
    now = utcnow()
    expired = set(
        session.scalars(
            select(SyncRun.id).where(
                SyncRun.status == RunStatus.RUNNING.value,
                SyncRun.leaseOwner.is_not(None),
                SyncRun.leaseExpiresAt < now,
            )
        )
    )
    idle = set(
        session.scalars(
            select(SyncRun.id).where(
                SyncRun.status == RunStatus.RUNNING.value,
                SyncRun.leaseOwner.is_(None),
                SyncRun.updatedAt < now - timedelta(seconds=lease_seconds),
            )
        )
    )
    found = [StaleRun(r, Staleness.LEASE_EXPIRED) for r in expired]
    found += [StaleRun(r, Staleness.IDLE) for r in idle - expired]
    return sorted(found, key=lambda stale: stale.run_id)


def claim_stale(session: Session, run_id: str, lease_seconds: float) -> bool:
    """Mark a stalled run as handled now; False when it moved or another reaper took it.

    Touching `updatedAt` is the claim: a second reaper's identical UPDATE then matches
    nothing, and the run is sent again at most once per lease period. The caller commits.
    """
    now = utcnow()
    quiet_since: datetime = now - timedelta(seconds=lease_seconds)
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
    if _rowcount(result) != 1:
        session.rollback()
        return False
    return True
