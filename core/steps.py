"""`run_step`: one bounded slice of a run, the unit every executor (HTTP, CLI, Celery) calls.

A step takes the run's lease, executes at most one module for at most the step budget,
commits after every page, and gives the lease back. A lease whose holder stopped heartbeating
is taken over, and the module resumes from its page checkpoint. The lease is
`core.runs.lease`; the status transitions (finalize) are `core.runs.lifecycle`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from core.companies import company_token
from core.db import is_outage
from core.errors import RunStateError, TimeLimitPassed, TinyError, short_error
from core.models import Company, SyncRun, utcnow
from core.modules import MODULES, module_for
from core.modules.base import (
    BackOffLater,
    ModuleContext,
    StepInterrupted,
    SyncModule,
    set_watermark,
)
from core.modules.source import Source
from core.notify import notify_run_finished
from core.runs import lease
from core.runs.inputs import run_window
from core.runs.lease import StopReason, new_owner
from core.runs.lifecycle import fail_run, finalize_run, get_run
from core.runs.logs import add_log
from core.runs.model import ModuleStatus, Progress, RunStatus
from core.settings import Settings
from core.tiny import TinyClient
from core.v3.tokens import V3, reconnect_message
from core.wording import (
    module_failed_line,
    module_label,
    tiny_error_text,
    verified_log_line,
    verified_needs_attention,
)

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    """What a step did and where the run stands."""

    run_id: str
    status: str
    current_module: str | None
    progress: dict[str, Any]  # the progress document's JSON (`Progress.to_json`), as shown
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


def _result(
    run: SyncRun,
    keys: Sequence[str],
    executed: str | None = None,
    retry_after: float | None = None,
) -> StepResult:
    progress = Progress.from_json(run.progressJson, keys).as_shown(run.status)
    return StepResult(
        run_id=run.id,
        status=run.status,
        current_module=run.currentModule,
        progress=progress.to_json(),
        has_more=RunStatus(run.status).is_active,
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
    modules: Sequence[SyncModule] = MODULES,
) -> StepResult:
    """Execute the next slice of the run; safe to call concurrently for the same run.

    `modules` is the registry the run executes, in run order (default: the static one).
    """
    owner = owner or new_owner()
    keys = [m.key for m in modules]

    def notify(finished: str) -> None:
        notify_run_finished(session_factory, settings, finished)

    with session_factory() as session:
        run = get_run(session, run_id)
        if run.status == RunStatus.QUEUED:
            raise RunStateError(
                f"run {run.id} has not been started", run_id=run.id, status=run.status
            )
        if run.status != RunStatus.RUNNING:
            return _result(run, keys)
        key = Progress.from_json(run.progressJson, keys).next_module(keys)
        if key is None:
            return _result(finalize_run(session, run.id, on_finish=notify), keys)
        if only_module is not None and key != only_module:
            return _result(run, keys)
        company = session.get(Company, run.companyId)
        assert company is not None
        if company.apiVersion == V3 and company.needsReconnect:
            # Only a person can bring the company back: fail now, without calling Tiny.
            failed = fail_run(session, run.id, reconnect_message(company))
            session.commit()  # end the read fail_run ended with (on SQLite, the write lock)
            notify(failed.id)
            return _result(failed, keys)
        taken_over = lease.take(session, run.id, owner, settings.sync_lease_seconds)
        if taken_over is None:
            return _result(get_run(session, run.id), keys)  # another executor holds it
        run = get_run(session, run.id)
        source = _source(session_factory, settings, client, company)
        token = "" if source is not None else company_token(company, settings)
        account = company.tinyAccountKey
        client.pace(account, company.tinyCallsPerMinute)  # its override, read at each step

    window = run_window(run)
    ctx = ModuleContext(
        run_id=run.id,
        company_id=run.companyId,
        mode=run.mode,
        window_start=window.start,
        window_end=window.end,
        token=token,
        account=account,
        module=key,
        settings=settings,
        client=client,
        session_factory=session_factory,
        owner=owner,
        progress=Progress.from_json(run.progressJson, keys),
        checkpoints=dict(run.checkpointJson or {}),
        deadline=time.monotonic()
        + (settings.sync_step_budget_seconds if budget_seconds is None else budget_seconds),
        log_line=lambda *a, **kw: _log(session_factory, run.id, *a, **kw),
        source=source,
    )
    try:
        _execute(ctx, module_for(key, modules), resumed=taken_over)
    except DBAPIError as exc:
        if not is_outage(exc):
            raise
        # The database failed, not the module: every page so far is committed, so leave the
        # module as it stands, give the lease back if the database lets us, and let the
        # executor try the step again (Celery's retry, or the client's next `step`).
        _release_quietly(session_factory, run.id, owner)
        raise
    except _Paused as pause:
        with session_factory() as session:
            return _result(get_run(session, run.id), keys, pause.executed, pause.wait_seconds)
    except StepInterrupted:
        with session_factory() as session:
            return _result(get_run(session, run.id), keys, executed=key)
    with session_factory() as session:
        run = get_run(session, run.id)
        if run.status == RunStatus.RUNNING:
            if Progress.from_json(run.progressJson, keys).next_module(keys) is None:
                run = finalize_run(session, run.id, on_finish=notify)
        return _result(run, keys, executed=key)


def _source(
    session_factory: sessionmaker[Session], settings: Settings, client: TinyClient, company: Company
) -> Source | None:
    """A v3 company's source (v3 resources, its token renewer); None for v2 (the default)."""
    if company.apiVersion != V3:
        return None
    if client.v3 is None:
        raise RuntimeError("this process has no Tiny v3 client (core.services.build_services)")
    return client.v3.source(session_factory, settings, company)


class _Paused(Exception):
    """The module waits for a back-off Tiny imposed; the step ends and says for how long."""

    def __init__(self, wait_seconds: float, executed: str | None):
        super().__init__(wait_seconds)
        self.wait_seconds = wait_seconds
        self.executed = executed


def _execute(ctx: ModuleContext, module: SyncModule, *, resumed: bool) -> None:
    """Run `module` under the lease `ctx.owner` holds, for at most the step's budget.

    Returns with the lease given back; raises `_Paused` for a back-off, StepInterrupted when
    the run was canceled or taken over (both also with the lease dealt with).
    """
    wait = _not_before(ctx.checkpoints, ctx.module)
    if wait is not None:
        _release(ctx)
        raise _Paused(wait, executed=None)
    (ctx.checkpoints.get(ctx.module) or {}).pop("notBefore", None)
    try:
        _begin_module(ctx, resumed=resumed)
        if module.run(ctx):
            _finish_module(ctx)
    except BackOffLater as pause:
        ctx.checkpoint["notBefore"] = (utcnow() + timedelta(seconds=pause.wait_seconds)).isoformat()
        try:
            ctx.commit()
        except StepInterrupted as stop:
            _interrupted(ctx, stop.reason)
        _release(ctx)
        raise _Paused(pause.wait_seconds, executed=ctx.module) from None
    except StepInterrupted as stop:
        _interrupted(ctx, stop.reason)
        raise
    except TinyError as exc:
        _fail_module(ctx, tiny_error_text(exc))
    except TimeLimitPassed as exc:
        _fail_module(ctx, str(exc))
    except Exception as exc:  # a bug must fail the module, not the run or the worker
        if is_outage(exc):
            raise
        log.exception("module %s of run %s crashed", ctx.module, ctx.run_id)
        _fail_module(ctx, f"erro interno: {type(exc).__name__}: {exc}")
    _release(ctx)


def _release(ctx: ModuleContext) -> None:
    with ctx.session_factory() as session:
        lease.release(session, ctx.run_id, ctx.owner)


def _release_quietly(session_factory: sessionmaker[Session], run_id: str, owner: str) -> None:
    """Give the lease back if the database answers; if not, it expires on its own."""
    try:
        with session_factory() as session:
            lease.release(session, run_id, owner)
    except DBAPIError as exc:
        log.warning("could not give back the lease of run %s (it will expire): %s", run_id, exc)


# -- module bookkeeping -------------------------------------------------------------------
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
    first_time = entry.status is ModuleStatus.PENDING
    entry.status = ModuleStatus.RUNNING
    if first_time:
        entry.started_at = utcnow().isoformat()
        ctx.checkpoints.pop(ctx.module, None)
    where = _describe_checkpoint(ctx.checkpoint)
    if resumed:
        ctx.log_line(
            "warn",
            f"{module_label(ctx.module)} retomado {where}: o executor anterior parou de responder",
            module=ctx.module,
            metadata={"checkpoint": ctx.checkpoint},
        )
    # No "module started" line: the progress has its startedAt, and the line that says what
    # the module did comes when it is done (a run that finds nothing new stays a few lines).
    ctx.commit()


def _describe_checkpoint(checkpoint: dict[str, Any]) -> str:
    if not checkpoint:
        return "do início"
    phase = checkpoint.get("phase", "list")
    page = checkpoint.get("page")
    return f"do ponto salvo ({phase}, página {page})" if page else f"do ponto salvo ({phase})"


def _finish_module(ctx: ModuleContext) -> None:
    entry = ctx.entry
    entry.status = ModuleStatus.DONE
    entry.finished_at = utcnow().isoformat()
    until = ctx.checkpoint.get("watermark")
    ctx.checkpoints.pop(ctx.module, None)

    def write(session: Session) -> None:
        if until and ctx.incremental:
            set_watermark(
                session, ctx.company_id, ctx.module, datetime.fromisoformat(until), ctx.run_id
            )

    ctx.commit(write)
    entry = ctx.entry
    found = entry.verified
    notable = entry.errors or found.corrected or found.set_aside or found.unconfirmed
    if ctx.incremental and not (notable or entry.processed or entry.skipped):
        return  # found nothing new: the run's last line has every module's count
    verified = entry.verified
    ctx.log_line(
        "warn" if verified_needs_attention(verified) else "info",
        verified_log_line(ctx.module, verified, entry.counters),
        module=ctx.module,
        metadata={
            "processed": entry.processed,
            "skipped": entry.skipped,
            **entry.counters,
            "verified": verified.to_json(),
        },
    )


def _fail_module(ctx: ModuleContext, message: str) -> None:
    message = short_error(message)  # the detail (SQL, parameters) is in the Python log
    entry = ctx.entry
    entry.status = ModuleStatus.FAILED
    entry.finished_at = utcnow().isoformat()
    try:
        ctx.commit(errors=[message])
    except StepInterrupted as stop:
        _interrupted(ctx, stop.reason)
        return
    ctx.log_line("error", module_failed_line(ctx.module, message), module=ctx.module)


def _interrupted(ctx: ModuleContext, reason: str) -> None:
    if reason == StopReason.CANCELED:
        with ctx.session_factory() as session:
            lease.release_canceled(
                session,
                ctx.run_id,
                ctx.owner,
                progress=ctx.progress.canceled().to_json(),
                calls=ctx.pending_calls,
            )
            add_log(
                session,
                ctx.run_id,
                "warn",
                f"Execução cancelada: {module_label(ctx.module)} parou antes da próxima "
                "chamada ao Tiny",
                module=ctx.module,
            )
            session.commit()
    else:
        ctx.log_line(
            "warn",
            f"{module_label(ctx.module)}: outro executor assumiu a execução; este parou",
            module=ctx.module,
        )
