"""`run_step`: one bounded slice of a run, the unit every executor (HTTP, CLI, Celery) calls.

A step takes the run's lease (a conditional UPDATE), executes at most one module for at most
the step budget, commits after every page, and gives the lease back. A lease whose holder
stopped heartbeating is taken over, and the module resumes from its page checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from core.companies import company_token
from core.db import is_outage
from core.errors import RunStateError, TinyError, short_error
from core.models import Company, SyncRun, utcnow
from core.modules import MODULE_KEYS, load_module
from core.modules.base import BackOffLater, ModuleContext, StepInterrupted, set_watermark
from core.runs import (
    ModuleStatus,
    RunStatus,
    add_log,
    canceled_progress,
    get_run,
    has_more,
    initial_progress,
    progress_view,
    run_window,
)
from core.settings import Settings
from core.tiny import TinyClient

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    """What a step did and where the run stands."""

    run_id: str
    status: str
    current_module: str | None
    progress: dict[str, Any]
    has_more: bool
    executed: str | None  # the module this step worked on, if any
    retry_after_seconds: float | None = None  # Tiny asked us to wait before the next slice

    def as_json(self) -> dict[str, Any]:
        """The seed's step response body."""
        return {
            "success": True,
            "runId": self.run_id,
            "status": self.status,
            "currentModule": self.current_module,
            "progress": self.progress,
            "hasMore": self.has_more,
        }


def new_owner() -> str:
    """A name for this executor, unique per call, readable in the database."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def next_module(progress: dict[str, Any]) -> str | None:
    """The first module still pending or running, in run order."""
    modules = progress.get("modules", {})
    for key in MODULE_KEYS:
        status = modules.get(key, {}).get("status", ModuleStatus.PENDING.value)
        if status in (ModuleStatus.PENDING.value, ModuleStatus.RUNNING.value):
            return key
    return None


def _result(
    run: SyncRun, executed: str | None = None, retry_after: float | None = None
) -> StepResult:
    return StepResult(
        run_id=run.id,
        status=run.status,
        current_module=run.currentModule,
        progress=progress_view(run),
        has_more=has_more(run),
        executed=executed,
        retry_after_seconds=retry_after,
    )


def _not_before(checkpoints: dict[str, Any], module: str) -> float | None:
    """Seconds left of a back-off Tiny imposed on `module`, if any."""
    stamp = (checkpoints.get(module) or {}).get("notBefore")
    if not stamp:
        return None
    left = (datetime.fromisoformat(stamp) - utcnow()).total_seconds()
    return left if left > 0 else None


def run_step(
    session_factory: sessionmaker[Session],
    settings: Settings,
    client: TinyClient,
    run_id: Any,
    *,
    owner: str | None = None,
    only_module: str | None = None,
    budget_seconds: float | None = None,
) -> StepResult:
    """Execute the next slice of the run; safe to call concurrently for the same run."""
    owner = owner or new_owner()
    with session_factory() as session:
        run = get_run(session, run_id)
        if run.status == RunStatus.QUEUED.value:
            raise RunStateError(
                f"run {run.id} has not been started", run_id=run.id, status=run.status
            )
        if run.status != RunStatus.RUNNING.value:
            return _result(run)
        module = next_module(run.progressJson or initial_progress())
        if module is None:
            finalize_run(session, run.id)
            return _result(get_run(session, run.id))
        if only_module is not None and module != only_module:
            return _result(run)
        taken_over = _acquire_lease(session, run, owner, settings.sync_lease_seconds)
        if taken_over is None:
            return _result(get_run(session, run.id))  # another executor holds it
        run = get_run(session, run.id)
        company = session.get(Company, run.companyId)
        assert company is not None
        token = company_token(company, settings)
        account = company.tinyAccountKey

    try:
        return _execute(
            session_factory,
            settings,
            client,
            run,
            module,
            owner,
            token,
            account,
            resumed=taken_over,
            budget_seconds=budget_seconds,
        )
    except DBAPIError as exc:
        if not is_outage(exc):
            raise
        # The database failed, not the module: every page so far is committed, so leave the
        # module as it stands, give the lease back if the database lets us, and let the
        # executor try the step again (Celery's retry, or the client's next `step`).
        _release_lease_quietly(session_factory, run.id, owner)
        raise


def _execute(
    session_factory: sessionmaker[Session],
    settings: Settings,
    client: TinyClient,
    run: SyncRun,
    module: str,
    owner: str,
    token: str,
    account: str,
    *,
    resumed: bool,
    budget_seconds: float | None,
) -> StepResult:
    """Run `module` under the lease `owner` holds, for at most the step's budget."""
    budget = settings.sync_step_budget_seconds if budget_seconds is None else budget_seconds
    window = run_window(run)
    progress = run.progressJson or initial_progress()
    checkpoints = dict(run.checkpointJson or {})
    wait = _not_before(checkpoints, module)
    if wait is not None:
        _release_lease(session_factory, run.id, owner)
        with session_factory() as session:
            return _result(get_run(session, run.id), retry_after=wait)
    (checkpoints.get(module) or {}).pop("notBefore", None)
    ctx = ModuleContext(
        run_id=run.id,
        company_id=run.companyId,
        mode=run.mode,
        window_start=window.start,
        window_end=window.end,
        token=token,
        account=account,
        module=module,
        settings=settings,
        client=client,
        session_factory=session_factory,
        owner=owner,
        progress=progress,
        checkpoints=checkpoints,
        deadline=time.monotonic() + budget,
        log_line=lambda *a, **kw: _log(session_factory, run.id, *a, **kw),
    )
    _begin_module(ctx, resumed=resumed)
    try:
        finished = load_module(module).run(ctx)
    except BackOffLater as pause:
        ctx.checkpoint["notBefore"] = (utcnow() + timedelta(seconds=pause.wait_seconds)).isoformat()
        try:
            ctx.commit()
        except StepInterrupted as stop:
            _interrupted(session_factory, ctx, stop.reason)
        _release_lease(session_factory, run.id, owner)
        with session_factory() as session:
            return _result(get_run(session, run.id), module, retry_after=pause.wait_seconds)
    except StepInterrupted as stop:
        _interrupted(session_factory, ctx, stop.reason)
        with session_factory() as session:
            return _result(get_run(session, run.id), executed=module)
    except TinyError as exc:
        _fail_module(ctx, str(exc))
    except Exception as exc:  # a bug must fail the module, not the run or the worker
        if is_outage(exc):
            raise
        log.exception("module %s of run %s crashed", module, run.id)
        _fail_module(ctx, f"internal error: {type(exc).__name__}: {exc}")
    else:
        if finished:
            _finish_module(ctx)
    _release_lease(session_factory, run.id, owner)
    with session_factory() as session:
        run = get_run(session, run.id)
        if run.status == RunStatus.RUNNING.value and next_module(run.progressJson or {}) is None:
            finalize_run(session, run.id)
            run = get_run(session, run.id)
        return _result(run, executed=module)


# -- lease ------------------------------------------------------------------------------
def _acquire_lease(session: Session, run: SyncRun, owner: str, lease_seconds: float) -> bool | None:
    """Take the lease; None if someone else holds a live one, else whether it was taken over."""
    now = utcnow()
    previous = run.leaseOwner
    result = session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run.id,
            SyncRun.status == RunStatus.RUNNING.value,
            or_(SyncRun.leaseOwner.is_(None), SyncRun.leaseExpiresAt < now),
        )
        .values(
            leaseOwner=owner,
            leaseExpiresAt=now + timedelta(seconds=lease_seconds),
            heartbeatAt=now,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    taken_over = previous is not None
    if taken_over:
        session.execute(
            update(SyncRun).where(SyncRun.id == run.id).values(resumeCount=SyncRun.resumeCount + 1)
        )
    session.commit()
    return taken_over


def _release_lease_quietly(session_factory: sessionmaker[Session], run_id: str, owner: str) -> None:
    """Give the lease back if the database answers; if not, it expires on its own."""
    try:
        _release_lease(session_factory, run_id, owner)
    except DBAPIError as exc:
        log.warning("could not give back the lease of run %s (it will expire): %s", run_id, exc)


def _release_lease(session_factory: sessionmaker[Session], run_id: str, owner: str) -> None:
    with session_factory() as session:
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.leaseOwner == owner)
            .values(leaseOwner=None, leaseExpiresAt=None)
        )
        session.commit()


# -- module bookkeeping -----------------------------------------------------------------
def _log(
    session_factory: sessionmaker[Session],
    run_id: str,
    level: str,
    message: str,
    *,
    module: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    with session_factory() as session:
        add_log(session, run_id, level, message, module=module, metadata=metadata)
        session.commit()


def _begin_module(ctx: ModuleContext, *, resumed: bool) -> None:
    entry = ctx.entry
    first_time = entry.get("status") == ModuleStatus.PENDING.value
    entry["status"] = ModuleStatus.RUNNING.value
    if first_time:
        entry["startedAt"] = utcnow().isoformat()
        ctx.checkpoints.pop(ctx.module, None)
    where = _describe_checkpoint(ctx.checkpoint)
    if resumed:
        ctx.log_line(
            "warn",
            f"resumed {ctx.module} {where}: its previous executor stopped heartbeating",
            module=ctx.module,
            metadata={"checkpoint": ctx.checkpoint},
        )
    elif first_time:
        ctx.log_line("info", f"module {ctx.module} started", module=ctx.module)
    ctx.commit()


def _describe_checkpoint(checkpoint: dict[str, Any]) -> str:
    if not checkpoint:
        return "from the start"
    phase = checkpoint.get("phase", "list")
    page = checkpoint.get("page")
    return (
        f"from its checkpoint ({phase}, page {page})" if page else f"from its checkpoint ({phase})"
    )


def _finish_module(ctx: ModuleContext) -> None:
    entry = ctx.entry
    entry["status"] = ModuleStatus.DONE.value
    entry["finishedAt"] = utcnow().isoformat()
    until = ctx.checkpoint.get("watermark")
    ctx.checkpoints.pop(ctx.module, None)

    def write(session: Session) -> None:
        if until and ctx.incremental:
            set_watermark(
                session, ctx.company_id, ctx.module, datetime.fromisoformat(until), ctx.run_id
            )

    ctx.commit(write)
    extra = {
        k: v for k, v in entry.items() if k not in ("status", "errors", "startedAt", "finishedAt")
    }
    ctx.log_line(
        "info",
        f"module {ctx.module} done: {entry.get('processed', 0)} processed, "
        f"{entry.get('skipped', 0)} skipped, {entry.get('calls', 0)} Tiny calls",
        module=ctx.module,
        metadata=extra,
    )


def _fail_module(ctx: ModuleContext, message: str) -> None:
    message = short_error(message)  # the detail (SQL, parameters) is in the Python log
    entry = ctx.entry
    entry["status"] = ModuleStatus.FAILED.value
    entry["finishedAt"] = utcnow().isoformat()
    try:
        ctx.commit(errors=[message])
    except StepInterrupted as stop:
        _interrupted(ctx.session_factory, ctx, stop.reason)
        return
    ctx.log_line("error", f"module {ctx.module} failed: {message}", module=ctx.module)


def _interrupted(session_factory: sessionmaker[Session], ctx: ModuleContext, reason: str) -> None:
    if reason == "canceled":
        with session_factory() as session:
            session.execute(
                update(SyncRun)
                .where(SyncRun.id == ctx.run_id, SyncRun.leaseOwner == ctx.owner)
                .values(
                    progressJson=canceled_progress(ctx.progress),
                    currentModule=None,
                    leaseOwner=None,
                    leaseExpiresAt=None,
                    tinyCalls=SyncRun.tinyCalls + ctx.pending_calls,
                    updatedAt=utcnow(),
                )
            )
            add_log(
                session,
                ctx.run_id,
                "warn",
                f"run canceled: {ctx.module} stopped before its next Tiny call",
                module=ctx.module,
            )
            session.commit()
    else:
        ctx.log_line(
            "warn",
            f"{ctx.module}: another executor took the run over; this one stopped",
            module=ctx.module,
        )


# -- the end of a run -------------------------------------------------------------------
def finalize_run(session: Session, run_id: str) -> SyncRun:
    """RUNNING → DONE or FAILED once no module is pending; idempotent."""
    run = get_run(session, run_id)
    if run.status != RunStatus.RUNNING.value:
        return run
    progress = run.progressJson or initial_progress()
    if next_module(progress) is not None:
        return run
    failed = [
        key
        for key, entry in progress["modules"].items()
        if entry.get("status") == ModuleStatus.FAILED.value
    ]
    status = RunStatus.FAILED if failed else RunStatus.DONE
    message = None
    if failed:
        details = "; ".join(
            f"{key}: {(progress['modules'][key].get('errors') or ['failed'])[-1]}" for key in failed
        )
        message = f"failed modules: {', '.join(failed)} ({details})"[:2000]
    now = utcnow()
    result = session.execute(
        update(SyncRun)
        .where(SyncRun.id == run.id, SyncRun.status == RunStatus.RUNNING.value)
        .values(
            status=status.value,
            finishedAt=now,
            updatedAt=now,
            errorMessage=message,
            currentModule=None,
        )
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        total = sum(int(e.get("processed", 0)) for e in progress["modules"].values())
        add_log(
            session,
            run.id,
            "error" if failed else "info",
            f"run finished {status.value}: {total} records processed, {run.tinyCalls} Tiny calls"
            + (f"; {message}" if message else ""),
        )
    session.commit()
    return get_run(session, run.id)


def find_stale_runs(session: Session) -> list[str]:
    """RUNNING runs whose lease expired (their executor died): candidates to re-enqueue."""
    now = utcnow()
    return list(
        session.scalars(
            select(SyncRun.id).where(
                SyncRun.status == RunStatus.RUNNING.value,
                SyncRun.leaseOwner.is_not(None),
                SyncRun.leaseExpiresAt < now,
            )
        )
    )
