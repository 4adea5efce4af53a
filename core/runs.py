"""The sync run and its lifecycle: create, start, cancel, resume, status and history.

Every transition is a conditional UPDATE (`... WHERE status IN (allowed)`), so two callers
racing cannot both win, and a cancelled run can never be flipped to DONE by a late step.
"""

from __future__ import annotations

import calendar
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.companies import check_id, get_company, list_companies
from core.errors import ActiveRunExists, NotFoundError, RunStateError, ValidationError
from core.models import ACTIVE_STATUSES, SyncRun, SyncRunLog, new_id, utcnow
from core.modules import MODULE_KEYS
from core.settings import Settings

log = logging.getLogger(__name__)

MAX_PERIOD_DAYS = 366
MAX_LOG_MESSAGE = 2000


class RunStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELED)


class ModuleStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


class Mode(enum.StrEnum):
    INCREMENTAL = "incremental"
    PERIOD = "period"


@dataclass(frozen=True)
class Window:
    """The dates a run covers, inclusive."""

    start: date
    end: date


# -- input checks -----------------------------------------------------------------------
def parse_month(value: Any, today: date) -> Window:
    """`YYYY-MM` to its first and last day; the future and malformed months are refused."""
    if not isinstance(value, str):
        raise ValidationError("month must be text in the form YYYY-MM, e.g. 2024-12")
    text = value.strip()
    parts = text.split("-")
    if (
        len(parts) != 2
        or len(parts[0]) != 4
        or len(parts[1]) != 2
        or not all(p.isascii() and p.isdigit() for p in parts)
    ):
        raise ValidationError(f"month {value!r} is not in the form YYYY-MM, e.g. 2024-12")
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12:
        raise ValidationError(f"month {value!r} does not exist: the month must be 01 to 12")
    if year < 2000:
        raise ValidationError(f"month {value!r} is before 2000")
    first = date(year, month, 1)
    if first > today:
        raise ValidationError(f"month {value!r} is in the future")
    last = date(year, month, calendar.monthrange(year, month)[1])
    return Window(first, last)


def parse_day(value: Any, name: str) -> date:
    """An ISO date `YYYY-MM-DD`, or a ValidationError naming the field."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise ValidationError(f"{name} {value!r} is not a date in the form YYYY-MM-DD") from exc


def resolve_window(
    settings: Settings,
    mode: Any,
    *,
    month: Any = None,
    start_date: Any = None,
    end_date: Any = None,
    today: date | None = None,
) -> tuple[Mode, Window]:
    """Check the mode and period a person asked for, and turn them into dates."""
    today = today or utcnow().date()
    try:
        parsed_mode = Mode(mode)
    except ValueError as exc:
        raise ValidationError(f"mode {mode!r} is unknown: use 'incremental' or 'period'") from exc
    if parsed_mode is Mode.INCREMENTAL:
        if month is not None or start_date is not None or end_date is not None:
            raise ValidationError("incremental mode takes no month or dates")
        days = settings.sync_incremental_days
        return parsed_mode, Window(today - timedelta(days=days), today)
    if month is not None:
        if start_date is not None or end_date is not None:
            raise ValidationError("give either month or startDate/endDate, not both")
        return parsed_mode, parse_month(month, today)
    if start_date is None or end_date is None:
        raise ValidationError("period mode needs month (YYYY-MM) or both startDate and endDate")
    start, end = parse_day(start_date, "startDate"), parse_day(end_date, "endDate")
    if start > end:
        raise ValidationError("startDate is after endDate")
    if start > today:
        raise ValidationError("startDate is in the future")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError("the period is longer than 12 months; split it into smaller runs")
    return parsed_mode, Window(start, end)


def _at_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def run_window(run: SyncRun) -> Window:
    """The inclusive dates a run covers."""
    start = run.startDate or run.createdAt
    end = run.endDate or run.createdAt
    return Window(start.date(), end.date())


def initial_progress() -> dict[str, Any]:
    """Every module pending with zero counts, as in the seed's progress JSON."""
    return {
        "modules": {
            key: {"status": ModuleStatus.PENDING.value, "processed": 0, "skipped": 0, "errors": []}
            for key in MODULE_KEYS
        }
    }


# -- transitions ------------------------------------------------------------------------
def create_run(
    session: Session,
    settings: Settings,
    *,
    company_id: Any,
    mode: Any,
    month: Any = None,
    start_date: Any = None,
    end_date: Any = None,
    triggered_by: str | None = None,
    today: date | None = None,
) -> SyncRun:
    """Create a QUEUED run, or raise ActiveRunExists naming the company's active run.

    Commits: the unique index on active runs is what makes a second create lose a race.
    """
    parsed_mode, window = resolve_window(
        settings, mode, month=month, start_date=start_date, end_date=end_date, today=today
    )
    company = get_company(session, company_id)
    if not company.active:
        raise ValidationError(f"company {company.id} is inactive")
    active = active_run_id(session, company.id)
    if active:
        raise ActiveRunExists(
            "this company already has a sync in progress", run_id=active, status=None
        )
    run = SyncRun(
        id=new_id(),
        companyId=company.id,
        mode=parsed_mode.value,
        startDate=_at_midnight(window.start),
        endDate=_at_midnight(window.end),
        status=RunStatus.QUEUED.value,
        progressJson=initial_progress(),
        checkpointJson={},
        triggeredByUserId=triggered_by,
        createdAt=utcnow(),
        updatedAt=utcnow(),
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise ActiveRunExists(
            "this company already has a sync in progress",
            run_id=active_run_id(session, company.id),
        ) from exc
    add_log(
        session,
        run.id,
        "info",
        f"run created: {parsed_mode.value} {window.start.isoformat()}..{window.end.isoformat()}",
        metadata={"triggeredBy": triggered_by} if triggered_by else None,
    )
    session.commit()
    return run


def active_run_id(session: Session, company_id: str) -> str | None:
    """The id of the company's QUEUED/RUNNING run, if any."""
    return session.scalar(
        select(SyncRun.id).where(
            SyncRun.companyId == company_id, SyncRun.status.in_(ACTIVE_STATUSES)
        )
    )


def get_run(session: Session, run_id: Any) -> SyncRun:
    """The run with this id (fresh from the database), or NotFoundError."""
    rid = check_id(run_id, "runId")
    run = session.get(SyncRun, rid, populate_existing=True)
    if run is None:
        raise NotFoundError(f"run {rid} not found")
    return run


def start_run(session: Session, run_id: Any) -> SyncRun:
    """QUEUED → RUNNING; starting a RUNNING run again is a no-op, a finished one a conflict."""
    run = get_run(session, run_id)
    now = utcnow()
    result = session.execute(
        update(SyncRun)
        .where(SyncRun.id == run.id, SyncRun.status == RunStatus.QUEUED.value)
        .values(status=RunStatus.RUNNING.value, startedAt=now, updatedAt=now)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        add_log(session, run.id, "info", "run started")
        session.commit()
        return get_run(session, run.id)
    session.rollback()
    run = get_run(session, run.id)
    if run.status == RunStatus.RUNNING.value:
        return run
    raise RunStateError(
        f"run {run.id} is {run.status} and cannot be started", run_id=run.id, status=run.status
    )


def cancel_run(session: Session, run_id: Any, *, reason: str = "canceled by the user") -> SyncRun:
    """QUEUED/RUNNING → CANCELED; takes effect before the executor's next Tiny call."""
    run = get_run(session, run_id)
    now = utcnow()
    result = session.execute(
        update(SyncRun)
        .where(SyncRun.id == run.id, SyncRun.status.in_(ACTIVE_STATUSES))
        .values(status=RunStatus.CANCELED.value, finishedAt=now, updatedAt=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        run = get_run(session, run.id)
        if run.status == RunStatus.CANCELED.value:
            return run
        raise RunStateError(
            f"run {run.id} is {run.status} and can no longer be canceled",
            run_id=run.id,
            status=run.status,
        )
    add_log(session, run.id, "warn", reason)
    # No executor holds the run: mark its unfinished modules canceled here. An executor that
    # holds it does so itself when it sees the status, so its last page's counts are kept.
    session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run.id,
            or_(SyncRun.leaseOwner.is_(None), SyncRun.leaseExpiresAt < now),
        )
        .values(progressJson=canceled_progress(run.progressJson), currentModule=None)
    )
    session.commit()
    return get_run(session, run.id)


def canceled_progress(progress: dict[str, Any] | None) -> dict[str, Any]:
    """The progress with every unfinished module marked canceled."""
    modules = dict((progress or initial_progress())["modules"])
    for key, entry in modules.items():
        if entry.get("status") in (ModuleStatus.PENDING.value, ModuleStatus.RUNNING.value):
            modules[key] = {**entry, "status": ModuleStatus.CANCELED.value}
    return {**(progress or {}), "modules": modules}


def resume_run(session: Session, run_id: Any) -> SyncRun:
    """FAILED → RUNNING again, re-running only the modules that failed."""
    run = get_run(session, run_id)
    if run.status != RunStatus.FAILED.value:
        raise RunStateError(
            f"only a FAILED run can be resumed; run {run.id} is {run.status}",
            run_id=run.id,
            status=run.status,
        )
    active = active_run_id(session, run.companyId)
    if active:
        raise ActiveRunExists(
            "this company already has a sync in progress", run_id=active, status=None
        )
    progress = run.progressJson or initial_progress()
    modules = dict(progress["modules"])
    failed = [k for k, v in modules.items() if v.get("status") == ModuleStatus.FAILED.value]
    for key in failed:
        modules[key] = {**modules[key], "status": ModuleStatus.PENDING.value, "errors": []}
    checkpoints = {k: v for k, v in (run.checkpointJson or {}).items() if k not in failed}
    now = utcnow()
    try:
        result = session.execute(
            update(SyncRun)
            .where(SyncRun.id == run.id, SyncRun.status == RunStatus.FAILED.value)
            .values(
                status=RunStatus.RUNNING.value,
                progressJson={**progress, "modules": modules},
                checkpointJson=checkpoints,
                errorMessage=None,
                finishedAt=None,
                updatedAt=now,
            )
        )
    except IntegrityError as exc:
        session.rollback()
        raise ActiveRunExists(
            "this company already has a sync in progress",
            run_id=active_run_id(session, run.companyId),
        ) from exc
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise RunStateError(f"run {run.id} changed while resuming", run_id=run.id)
    add_log(session, run.id, "info", f"run resumed: re-running {', '.join(failed) or 'nothing'}")
    session.commit()
    return get_run(session, run.id)


@dataclass
class PeriodicOutcome:
    """What `start_incremental_runs` did, company by company."""

    created: list[SyncRun]
    skipped: list[tuple[str, str | None]]  # (company id, its active run id)
    failed: list[
        tuple[str, str]
    ]  # (company id, run id canceled because it could not be handed over)


def start_incremental_runs(
    session: Session,
    settings: Settings,
    *,
    triggered_by: str,
    hand_over: Callable[[str], object] | None = None,
) -> PeriodicOutcome:
    """Create and start an incremental run for every active company that has no active run.

    Used by cron and beat. Safe when two callers tick at once: the unique index on active runs
    lets one `create_run` per company win. `hand_over(run_id)` gives a started run to its
    executor (the Celery queue); if it raises, the run is canceled, since a RUNNING run that no
    worker picks up would block the company's next runs.
    """
    outcome = PeriodicOutcome(created=[], skipped=[], failed=[])
    for company in list_companies(session, active_only=True):
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
                    reason=f"could not hand the run to the workers: {type(exc).__name__}",
                )
                outcome.failed.append((company.id, run.id))
                continue
        outcome.created.append(run)
    return outcome


# -- logs -------------------------------------------------------------------------------
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
    run = get_run(session, run_id)
    limit = max(1, min(int(limit), 500))
    stmt = select(SyncRunLog).where(SyncRunLog.runId == run.id)
    if before:
        cursor = session.get(SyncRunLog, before)
        if cursor is None or cursor.runId != run.id:
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


def log_view(entry: SyncRunLog) -> dict[str, Any]:
    """The JSON of a log line."""
    return {
        "id": entry.id,
        "timestamp": entry.timestamp.isoformat(),
        "level": entry.level,
        "message": entry.message,
        "module": entry.module,
        "metadata": entry.metadata_,
    }


# -- views ------------------------------------------------------------------------------
def progress_view(run: SyncRun) -> dict[str, Any]:
    """The run's progress as shown to people: unfinished modules of a canceled run canceled."""
    progress = run.progressJson or initial_progress()
    if run.status == RunStatus.CANCELED.value:
        progress = canceled_progress(progress)
    return progress


def has_more(run: SyncRun) -> bool:
    """Whether stepping the run can still do anything."""
    return run.status in ACTIVE_STATUSES


def run_summary(run: SyncRun) -> dict[str, Any]:
    """The JSON of a run in listings: what, when, how it ended, totals."""
    modules = progress_view(run)["modules"]
    duration = None
    if run.startedAt:
        duration = ((run.finishedAt or utcnow()) - run.startedAt).total_seconds()
    window = run_window(run)
    return {
        "runId": run.id,
        "id": run.id,
        "companyId": run.companyId,
        "mode": run.mode,
        "status": run.status,
        "startDate": window.start.isoformat(),
        "endDate": window.end.isoformat(),
        "currentModule": run.currentModule,
        "errorMessage": run.errorMessage,
        "createdAt": run.createdAt.isoformat(),
        "startedAt": run.startedAt.isoformat() if run.startedAt else None,
        "finishedAt": run.finishedAt.isoformat() if run.finishedAt else None,
        "durationSeconds": duration,
        "processed": sum(int(m.get("processed", 0)) for m in modules.values()),
        "skipped": sum(int(m.get("skipped", 0)) for m in modules.values()),
        "tinyCalls": run.tinyCalls,
        "triggeredByUserId": run.triggeredByUserId,
    }


def run_status(session: Session, run_id: Any, *, log_limit: int = 20) -> dict[str, Any]:
    """Everything the status route shows: the run, its modules and its latest logs."""
    run = get_run(session, run_id)
    logs, _ = list_logs(session, run.id, limit=log_limit)
    return {
        **run_summary(run),
        "progress": progress_view(run),
        "hasMore": has_more(run),
        "updatedAt": run.updatedAt.isoformat(),
        "logs": [log_view(entry) for entry in logs],
    }


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
