"""Runs over time: listing them, counting them, and starting the periodic incremental runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.companies import check_id, list_companies
from core.errors import ActiveRunExists, ValidationError
from core.models import SyncRun
from core.runs.lifecycle import cancel_run, create_run, notifier, start_run
from core.runs.model import RunStatus
from core.settings import Settings

log = logging.getLogger(__name__)


def list_runs(
    session: Session,
    *,
    company_id: Any = None,
    status: Any = None,
    limit: int = 20,
    before: str | None = None,
) -> tuple[list[SyncRun], str | None]:
    """Runs newest first, optionally of one company and status; returns the next cursor."""
    stmt = select(SyncRun)
    if company_id is not None:
        stmt = stmt.where(SyncRun.companyId == check_id(company_id, "companyId"))
    if status is not None:
        try:
            stmt = stmt.where(SyncRun.status == RunStatus(str(status).upper()).value)
        except ValueError as exc:
            allowed = ", ".join(s.value for s in RunStatus)
            raise ValidationError(f"status {status!r} is unknown: use one of {allowed}") from exc
    if before:
        cursor = session.get(SyncRun, check_id(before, "cursor"))
        if cursor is None:
            raise ValidationError("the cursor does not name a run")
        stmt = stmt.where(
            or_(
                SyncRun.createdAt < cursor.createdAt,
                and_(SyncRun.createdAt == cursor.createdAt, SyncRun.id < cursor.id),
            )
        )
    limit = max(1, min(int(limit), 200))
    rows = list(
        session.scalars(stmt.order_by(SyncRun.createdAt.desc(), SyncRun.id.desc()).limit(limit + 1))
    )
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


def count_runs_by_status(session: Session) -> dict[str, int]:
    """How many runs there are in each status (for metrics)."""
    rows = session.execute(select(SyncRun.status, func.count()).group_by(SyncRun.status)).all()
    return {status: count for status, count in rows}


def last_finished_runs(session: Session) -> dict[str, datetime | None]:
    """Every active company's latest finished run's creation time (None: never ran to an end).

    A company with an active run appears with its previous run's time: beat tries it, and
    the unique index on active runs reports it busy.
    """
    finished = [s.value for s in RunStatus if not s.is_active]
    latest = dict(
        session.execute(
            select(SyncRun.companyId, func.max(SyncRun.createdAt))
            .where(SyncRun.status.in_(finished))
            .group_by(SyncRun.companyId)
        ).all()
    )
    return {c.id: latest.get(c.id) for c in list_companies(session, active_only=True)}


@dataclass
class PeriodicOutcome:
    """What `start_incremental_runs` did, company by company."""

    created: list[SyncRun]
    skipped: list[tuple[str, str | None]]  # (company id, its active run id)
    failed: list[tuple[str, str]]  # (company id, run id canceled: it could not be handed over)


def start_incremental_runs(
    session: Session,
    settings: Settings,
    *,
    triggered_by: str,
    hand_over: Callable[[str], object] | None = None,
    only: Collection[str] | None = None,
) -> PeriodicOutcome:
    """Create and start an incremental run for every active company that has no active run
    (of those in `only`, when given: beat's companies due now) and that needs no reconnection
    to Tiny (a v3 company whose token pair lapsed is skipped until a person connects it).

    Used by cron and beat. Safe when two callers tick at once: the unique index on active runs
    lets one `create_run` per company win. `hand_over(run_id)` gives a started run to its
    executor (the Celery queue); if it raises, the run is canceled, since a RUNNING run that no
    worker picks up would block the company's next runs.
    """
    outcome = PeriodicOutcome(created=[], skipped=[], failed=[])
    for company in list_companies(session, active_only=True):
        if only is not None and company.id not in only:
            continue
        if company.needsReconnect:
            # Its run would fail at once and notify again every tick; the banner and the
            # first failure already asked a person to connect it again.
            outcome.skipped.append((company.id, None))
            continue
        try:
            run = create_run(
                session,
                settings,
                company_id=company.id,
                mode="incremental",
                triggered_by=triggered_by,
            )
        except ActiveRunExists as exc:
            outcome.skipped.append((company.id, exc.run_id))
            continue
        run = start_run(session, run.id)
        if hand_over is not None:
            try:
                hand_over(run.id)
            except Exception as exc:  # whatever the broker library raises: recorded, logged
                log.exception("could not hand run %s to its executor", run.id)
                cancel_run(
                    session,
                    run.id,
                    reason="não foi possível entregar a execução aos workers: "
                    f"{type(exc).__name__}",
                    on_finish=notifier(session, settings),
                )
                outcome.failed.append((company.id, run.id))
                continue
        outcome.created.append(run)
    return outcome
