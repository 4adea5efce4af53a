"""Server-side UI sessions: a signed cookie carries a random id; the row it names says
whether the session still counts (not revoked, not idle too long, not too old)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from core.models import UiSession, utcnow
from core.settings import Settings

#: `lastSeenAt` is written at most this often (a polling page must not write every second).
TOUCH_EVERY = timedelta(seconds=60)


def _row_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(db: Session) -> str:
    """A new signed-in session; returns the id the cookie carries (the caller commits)."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(UiSession(id=_row_id(session_id), createdAt=now, lastSeenAt=now))
    return session_id


def session_alive(db: Session, settings: Settings, session_id: str) -> bool:
    """Whether the session counts now; renews its idle clock (commits when it does)."""
    row = db.get(UiSession, _row_id(session_id))
    now = utcnow()
    if row is None or row.revokedAt is not None:
        return False
    if now - row.createdAt > timedelta(hours=settings.session_max_hours):
        return False
    if now - row.lastSeenAt > timedelta(minutes=settings.session_idle_minutes):
        return False
    if now - row.lastSeenAt > TOUCH_EVERY:
        row.lastSeenAt = now
        db.commit()
    return True


def revoke_session(db: Session, session_id: str) -> None:
    """End the session now: its cookie no longer counts anywhere (the caller commits)."""
    row = db.get(UiSession, _row_id(session_id))
    if row is not None and row.revokedAt is None:
        row.revokedAt = utcnow()


def prune_sessions(db: Session, settings: Settings, now: datetime | None = None) -> int:
    """Delete the rows of sessions that can no longer count; returns how many."""
    now = now or utcnow()
    too_old = now - timedelta(hours=settings.session_max_hours)
    idle = now - timedelta(minutes=settings.session_idle_minutes)
    ids = list(
        db.scalars(
            select(UiSession.id).where(
                or_(
                    UiSession.revokedAt.is_not(None),
                    UiSession.createdAt < too_old,
                    UiSession.lastSeenAt < idle,
                )
            )
        )
    )
    if ids:
        db.execute(delete(UiSession).where(UiSession.id.in_(ids)))
    return len(ids)
