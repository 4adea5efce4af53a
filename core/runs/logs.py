"""A run's log: lines appended as it goes, read newest first with a cursor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.companies import check_id
from core.errors import NotFoundError, ValidationError
from core.models import SyncRun, SyncRunLog, new_id, utcnow

MAX_LOG_MESSAGE = 2000


def add_log(
    session: Session,
    run_id: str,
    level: str,
    message: str,
    *,
    module: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Append a line to the run's log (the caller commits)."""
    session.add(
        SyncRunLog(
            id=new_id(),
            runId=run_id,
            timestamp=utcnow(),
            level=level,
            message=message[:MAX_LOG_MESSAGE],
            module=module,
            metadata_=metadata,
        )
    )


def list_logs(
    session: Session, run_id: Any, *, limit: int = 100, before: str | None = None
) -> tuple[list[SyncRunLog], str | None]:
    """A run's log, newest first, `limit` lines before the cursor; returns the next cursor."""
    rid = check_id(run_id, "runId")
    if session.get(SyncRun, rid) is None:
        raise NotFoundError(f"run {rid} not found")
    limit = max(1, min(int(limit), 500))
    stmt = select(SyncRunLog).where(SyncRunLog.runId == rid)
    if before:
        cursor = session.get(SyncRunLog, before)
        if cursor is None or cursor.runId != rid:
            raise ValidationError("the log cursor is not valid for this run")
        stmt = stmt.where(
            or_(
                SyncRunLog.timestamp < cursor.timestamp,
                and_(SyncRunLog.timestamp == cursor.timestamp, SyncRunLog.id < cursor.id),
            )
        )
    rows = list(
        session.scalars(
            stmt.order_by(SyncRunLog.timestamp.desc(), SyncRunLog.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor
