"""The run's lifecycle: every change of `SyncRun.status` is a function here.

    create_run    (new) → QUEUED
    start_run     QUEUED → RUNNING
    cancel_run    QUEUED | RUNNING → CANCELED
    finalize_run  RUNNING → DONE | FAILED, once no module is left
    resume_run    FAILED → RUNNING, re-running the failed modules
    fail_run      QUEUED | RUNNING → FAILED, unfinished modules failed
    expire_run    QUEUED → CANCELED (never started), RUNNING → FAILED (stale, given up)

Each goes through `transition`, one conditional UPDATE (`... WHERE status IN (from_)`): two
callers racing cannot both win, and a canceled run can never be flipped to DONE by a late
step. Who may execute a RUNNING run is the lease's business (`core.runs.lease`).

Every function that ends a run (cancel, finalize, fail, expire) takes `on_finish(run_id)`,
the one hook of a finished run (its notification, `notifier`): called once, after the
commit, by the caller whose transition won, with no transaction of the caller's open.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.companies import check_id, get_company
from core.errors import ActiveRunExists, NotFoundError, RunStateError, ValidationError
from core.models import SyncRun, new_id, utcnow
from core.runs.inputs import at_midnight, resolve_window
from core.runs.logs import add_log
from core.runs.model import ACTIVE_STATUSES, ModuleStatus, Progress, RunStatus
from core.settings import Settings
from core.wording import (
    CANCELED_BY_USER,
    RUN_STARTED_LINE,
    failed_modules_message,
    run_created_line,
    run_finished_line,
    run_resumed_line,
)

MAX_ERROR_MESSAGE = 2000

#: What a finished run's callers pass as `on_finish`: called with the run's id.
OnFinish = Callable[[str], object] | None


def transition(
    session: Session,
    run_id: str,
    from_: RunStatus | Collection[RunStatus],
    to: RunStatus,
    **values: Any,
) -> None:
    """Move the run from one of `from_` to `to`, setting `values` too; the caller commits.

    Raises RunStateError (carrying the status the run is in) when it was not in `from_`.
    """
    allowed = [from_.value] if isinstance(from_, RunStatus) else [s.value for s in from_]
    values.setdefault("updatedAt", utcnow())
    result = session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status.in_(allowed))
        .values(status=to.value, **values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = session.scalar(select(SyncRun.status).where(SyncRun.id == run_id))
        raise RunStateError(
            f"run {run_id} is {current} and cannot become {to.value}",
            run_id=run_id,
            status=current,
        )


def _active_values() -> list[str]:
    return [status.value for status in ACTIVE_STATUSES]


def _company_busy(session: Session, company_id: str) -> ActiveRunExists:
    return ActiveRunExists(
        "this company already has a sync in progress", run_id=active_run_id(session, company_id)
    )


# -- reading ------------------------------------------------------------------------------
def get_run(session: Session, run_id: Any) -> SyncRun:
    """The run with this id (fresh from the database), or NotFoundError."""
    rid = check_id(run_id, "runId")
    run = session.get(SyncRun, rid, populate_existing=True)
    if run is None:
        raise NotFoundError(f"run {rid} not found")
    return run


def active_run_id(session: Session, company_id: str) -> str | None:
    """The id of the company's QUEUED/RUNNING run, if any."""
    return session.scalar(
        select(SyncRun.id).where(
            SyncRun.companyId == company_id, SyncRun.status.in_(_active_values())
        )
    )


# -- transitions --------------------------------------------------------------------------
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
    modules: Sequence[str] | None = None,
) -> SyncRun:
    """Create a QUEUED run, or raise ActiveRunExists naming the company's active run.

    `modules` are the keys the run executes (default: the static registry's). Commits: the
    unique index on active runs is what makes a second create lose a race.
    """
    if modules is None:
        # Imported here: the modules depend on core.runs (their context saves through the
        # lease), so core.runs must not need them while it is being imported.
        from core.modules import MODULE_KEYS

        modules = MODULE_KEYS
    parsed_mode, window = resolve_window(
        settings, mode, month=month, start_date=start_date, end_date=end_date, today=today
    )
    company = get_company(session, company_id)
    if not company.active:
        raise ValidationError(f"company {company.id} is inactive")
    active = active_run_id(session, company.id)
    if active and expire_stuck_runs(
        session, settings, company_id=company.id, on_finish=notifier(session, settings)
    ):
        active = active_run_id(session, company.id)
    if active:
        raise ActiveRunExists(
            "this company already has a sync in progress", run_id=active, status=None
        )
    run = SyncRun(
        id=new_id(),
        companyId=company.id,
        mode=parsed_mode.value,
        startDate=at_midnight(window.start),
        endDate=at_midnight(window.end),
        status=RunStatus.QUEUED.value,
        progressJson=Progress.initial(modules).to_json(),
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
        raise _company_busy(session, company.id) from exc
    add_log(
        session,
        run.id,
        "info",
        run_created_line(parsed_mode.value, window.start.isoformat(), window.end.isoformat()),
        metadata={"triggeredBy": triggered_by} if triggered_by else None,
    )
    session.commit()
    return run


def start_run(session: Session, run_id: Any) -> SyncRun:
    """QUEUED → RUNNING; starting a RUNNING run again is a no-op, a finished one a conflict."""
    run = get_run(session, run_id)
    try:
        transition(session, run.id, RunStatus.QUEUED, RunStatus.RUNNING, startedAt=utcnow())
    except RunStateError as exc:
        session.rollback()
        if exc.status == RunStatus.RUNNING:
            return get_run(session, run.id)
        raise RunStateError(
            f"run {run.id} is {exc.status} and cannot be started", run_id=run.id, status=exc.status
        ) from None
    add_log(session, run.id, "info", RUN_STARTED_LINE)
    session.commit()
    return get_run(session, run.id)


def cancel_run(
    session: Session,
    run_id: Any,
    *,
    reason: str = CANCELED_BY_USER,
    on_finish: OnFinish = None,
) -> SyncRun:
    """QUEUED/RUNNING → CANCELED; takes effect before the executor's next Tiny call."""
    run = get_run(session, run_id)
    now = utcnow()
    try:
        transition(session, run.id, ACTIVE_STATUSES, RunStatus.CANCELED, finishedAt=now)
    except RunStateError as exc:
        session.rollback()
        if exc.status == RunStatus.CANCELED:
            return get_run(session, run.id)
        raise RunStateError(
            f"run {run.id} is {exc.status} and can no longer be canceled",
            run_id=run.id,
            status=exc.status,
        ) from None
    add_log(session, run.id, "warn", reason)
    # No executor holds the run: mark its unfinished modules canceled here. An executor that
    # holds it does so itself when it sees the status (`lease.release_canceled`), so its last
    # page's counts are kept.
    session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run.id,
            or_(SyncRun.leaseOwner.is_(None), SyncRun.leaseExpiresAt < now),
        )
        .values(
            progressJson=Progress.from_json(run.progressJson).canceled().to_json(),
            currentModule=None,
        )
    )
    finished_id = run.id
    session.commit()
    if on_finish is not None:
        on_finish(finished_id)
    return get_run(session, finished_id)


def resume_run(session: Session, run_id: Any) -> SyncRun:
    """FAILED → RUNNING again, re-running only the modules that failed."""
    run = get_run(session, run_id)
    if run.status != RunStatus.FAILED:
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
    progress = Progress.from_json(run.progressJson)
    failed = progress.failed
    for key in failed:
        progress[key].status = ModuleStatus.PENDING
        progress[key].errors = []
    checkpoints = {k: v for k, v in (run.checkpointJson or {}).items() if k not in failed}
    try:
        transition(
            session,
            run.id,
            RunStatus.FAILED,
            RunStatus.RUNNING,
            progressJson=progress.to_json(),
            checkpointJson=checkpoints,
            errorMessage=None,
            finishedAt=None,
        )
    except IntegrityError as exc:
        session.rollback()
        raise _company_busy(session, run.companyId) from exc
    except RunStateError as exc:
        session.rollback()
        raise RunStateError(f"run {run.id} changed while resuming", run_id=run.id) from exc
    add_log(session, run.id, "info", run_resumed_line(failed))
    session.commit()
    return get_run(session, run.id)


def finalize_run(session: Session, run_id: str, *, on_finish: OnFinish = None) -> SyncRun:
    """RUNNING → DONE or FAILED once no module is pending; idempotent.

    `on_finish(run_id)` is called after the commit, by the one caller whose transition won.
    """
    run = get_run(session, run_id)
    if run.status != RunStatus.RUNNING:
        return run
    progress = Progress.from_json(run.progressJson)
    if progress.unfinished:
        return run
    failed = progress.failed
    status = RunStatus.FAILED if failed else RunStatus.DONE
    counts = {key: entry.processed for key, entry in progress.modules.items()}
    # One short sentence; each module's own error is in its progress and the log.
    message = failed_modules_message(failed)[:MAX_ERROR_MESSAGE] if failed else None
    try:
        transition(
            session,
            run.id,
            RunStatus.RUNNING,
            status,
            finishedAt=utcnow(),
            errorMessage=message,
            currentModule=None,
        )
    except RunStateError:
        session.rollback()
        return get_run(session, run.id)
    add_log(
        session,
        run.id,
        "error" if failed else "info",
        run_finished_line(status.value, progress.processed, counts, run.tinyCalls, failed),
    )
    # Read the id before the commit expires `run`: refreshing it afterwards would open a
    # transaction (on SQLite, the write lock) that on_finish's own session would wait on.
    finished_id = run.id
    session.commit()
    if on_finish is not None:
        on_finish(finished_id)
    return get_run(session, run.id)


def fail_run(session: Session, run_id: Any, message: str, *, on_finish: OnFinish = None) -> SyncRun:
    """QUEUED/RUNNING → FAILED now: its unfinished modules fail with `message`, so a resume
    re-runs them. Takes the lease away from whoever held it."""
    run = get_run(session, run_id)
    progress = Progress.from_json(run.progressJson)
    for entry in progress.modules.values():
        if entry.status.is_unfinished:
            entry.status = ModuleStatus.FAILED
            entry.add_errors([message])
    transition(
        session,
        run.id,
        ACTIVE_STATUSES,
        RunStatus.FAILED,
        progressJson=progress.to_json(),
        errorMessage=message[:MAX_ERROR_MESSAGE],
        finishedAt=utcnow(),
        currentModule=None,
        leaseOwner=None,
        leaseExpiresAt=None,
    )
    add_log(session, run.id, "error", f"Execução falhou: {message}")
    finished_id = run.id
    session.commit()
    if on_finish is not None:
        on_finish(finished_id)
    return get_run(session, finished_id)


def expire_run(
    session: Session, run_id: Any, *, reason: str, on_finish: OnFinish = None
) -> SyncRun:
    """Give up a run that will not move: a QUEUED one that never started is canceled, a stale
    RUNNING one fails (and can be resumed). Raises RunStateError for a finished run."""
    run = get_run(session, run_id)
    if run.status == RunStatus.RUNNING:
        return fail_run(session, run.id, f"expirada: {reason}", on_finish=on_finish)
    try:
        transition(
            session,
            run.id,
            RunStatus.QUEUED,
            RunStatus.CANCELED,
            finishedAt=utcnow(),
            progressJson=Progress.from_json(run.progressJson).canceled().to_json(),
        )
    except RunStateError:
        session.rollback()
        raise
    add_log(session, run.id, "warn", f"Execução expirada: {reason}")
    finished_id = run.id
    session.commit()
    if on_finish is not None:
        on_finish(finished_id)
    return get_run(session, finished_id)


def expire_stuck_runs(
    session: Session,
    settings: Settings,
    *,
    company_id: str | None = None,
    on_finish: OnFinish = None,
) -> list[str]:
    """Give up the runs that would block their company's automation forever; their ids.

    - QUEUED for over SYNC_QUEUED_TIMEOUT_SECONDS: created and never started → CANCELED;
    - RUNNING with no live lease and no progress for SYNC_ABANDONED_AFTER_SECONDS: an
      inline run whose executor (a browser, a CLI) went away → FAILED, resumable.
    Called by `create_run` (so a create, a beat tick or a cron run proceeds).
    `on_finish(run_id)` is called for each run given up.
    """
    now = utcnow()
    queued_since = now - timedelta(seconds=settings.sync_queued_timeout_seconds)
    quiet_since = now - timedelta(seconds=settings.sync_abandoned_after_seconds)
    stmt = select(SyncRun.id, SyncRun.status).where(
        or_(
            (SyncRun.status == RunStatus.QUEUED.value) & (SyncRun.createdAt < queued_since),
            (SyncRun.status == RunStatus.RUNNING.value)
            & (SyncRun.updatedAt < quiet_since)
            & or_(SyncRun.leaseOwner.is_(None), SyncRun.leaseExpiresAt < now),
        )
    )
    if company_id is not None:
        stmt = stmt.where(SyncRun.companyId == company_id)
    expired = []
    for run_id, status in session.execute(stmt.order_by(SyncRun.id)).all():
        if status == RunStatus.QUEUED:
            reason = f"não começou em {settings.sync_queued_timeout_seconds:g} s"
        else:
            reason = f"sem executor e sem progresso por {settings.sync_abandoned_after_seconds:g} s"
        try:
            expire_run(session, run_id, reason=reason, on_finish=on_finish)
        except RunStateError:  # it moved meanwhile (started, stepped, canceled)
            session.rollback()
            continue
        expired.append(run_id)
        session.commit()  # end the read expire_run's answer began
    return expired


def notifier(
    source: Session | sessionmaker[Session], settings: Settings
) -> Callable[[str], object]:
    """The `on_finish` every caller passes: the finished run's notification (`core.notify`),
    sent in the background on sessions of its own (from `source`'s database)."""
    from core.notify import notify_run_finished  # it reads runs; imported when a run ends

    factory = source if isinstance(source, sessionmaker) else sessionmaker(source.get_bind())
    return lambda run_id: notify_run_finished(factory, settings, run_id)
