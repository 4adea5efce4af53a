"""A run on Celery: a chain of module tasks and a finaliser, each a thin driver of core.

`enqueue_run` sends a chain of immutable signatures: `tinysync.module(run_id, module)` for
every module still to run, in run order, then `tinysync.finalize(run_id)`. A module task runs
its module through core's `run_step`, which checks the run's status before the module and
before every page, and records a module's failure, so the task returns normally and the next
module still runs. A task that finds the run canceled or finished, its module done, or the
run's lease held by another executor returns at once: a second delivery of any message, or a
chain the reaper sent again, is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from celery import Signature, chain
from celery.exceptions import SoftTimeLimitExceeded
from celery.result import AsyncResult
from celery.utils.log import get_task_logger

from core.errors import NotFoundError, RunStateError
from core.modules import MODULE_KEYS
from core.notify import notify_run_finished
from core.runs import (
    ModuleStatus,
    RunStatus,
    fail_run,
    finalize_run,
    get_run,
    new_owner,
    notifier,
)
from core.runs import remaining_modules as _remaining
from core.steps import run_step
from worker.timelimit import time_limit

if TYPE_CHECKING:
    from worker.app import TinySyncCelery

MODULE_TASK = "tinysync.module"
FINALIZE_TASK = "tinysync.finalize"

log = get_task_logger(__name__)


def remaining_modules(progress: dict[str, Any] | None) -> list[str]:
    """The modules still pending or running, in run order."""
    return _remaining(progress, MODULE_KEYS)


def run_chain(celery: TinySyncCelery, run_id: str, modules: Sequence[str]) -> Signature:
    """The chain of immutable signatures: one module task per module, then the finaliser."""
    steps = [celery.tasks[MODULE_TASK].si(run_id, module) for module in modules]
    return chain(*steps, celery.tasks[FINALIZE_TASK].si(run_id))


def enqueue_run(
    celery: TinySyncCelery, run_id: str, modules: Sequence[str] | None = None
) -> AsyncResult:
    """Send a started run to the workers: its remaining modules (or `modules`) in order.

    Returns the finaliser's result handle; it can be waited on only where a result backend is
    configured (tests), since progress lives in the database.
    """
    if modules is None:
        with celery.services.session_factory() as session:
            modules = remaining_modules(get_run(session, run_id).progressJson)
    result: AsyncResult = run_chain(celery, run_id, modules).apply_async()
    return result


def run_module(celery: TinySyncCelery, run_id: str, module: str) -> dict[str, Any]:
    """Step the run's `module` for one slice of SYNC_TASK_SLICE_SECONDS; returns at once when it
    is not its turn.

    The answer says how the task goes on: `handBack` when the slice is over and the module is
    not (the task queues again behind the others, so many runs share the pool's threads
    fairly); `retryAfterSeconds` when Tiny imposed a back-off longer than a step (code 6:
    its minute window), which run_step records as a `notBefore` in the module's checkpoint;
    neither when the module is finished or there is nothing to do, and the chain goes on.
    Every Tiny call inside is bounded by SYNC_MODULE_SOFT_TIME_LIMIT_SECONDS
    (`worker.timelimit`), the limit a thread pool cannot enforce with a signal.
    """
    svc = celery.services
    settings = svc.settings
    owner = new_owner()
    slice_ends = time.monotonic() + settings.sync_task_slice_seconds
    slices = 0
    handed_back = False
    try:
        with time_limit(settings.sync_module_soft_time_limit_seconds):
            while True:
                budget = min(settings.sync_step_budget_seconds, slice_ends - time.monotonic())
                result = run_step(
                    svc.session_factory,
                    settings,
                    svc.client,
                    run_id,
                    owner=owner,
                    only_module=module,
                    budget_seconds=max(budget, 0.0),
                )
                if result.executed is not None:
                    slices += 1
                if result.executed is None or result.retry_after_seconds:
                    break  # not its turn, held elsewhere, run over; or paused by Tiny
                state = ModuleStatus(result.progress["modules"][module]["status"])
                if result.status != RunStatus.RUNNING or not state.is_unfinished:
                    break
                if time.monotonic() >= slice_ends:
                    handed_back = True
                    break
    except (NotFoundError, RunStateError) as exc:
        log.warning("run %s, module %s: nothing to do: %s", run_id, module, exc)
        return {"runId": run_id, "module": module, "skipped": str(exc)}
    except SoftTimeLimitExceeded:
        # Between pages (inside a page, run_step records the module as failed): the lease
        # this task held expires, and the reaper resumes the module from its checkpoint.
        log.error("run %s, module %s: soft time limit passed between pages", run_id, module)
        return {"runId": run_id, "module": module, "skipped": "soft time limit"}
    state = result.progress["modules"].get(module, {}).get("status")
    outcome = {
        "runId": run_id,
        "module": module,
        "moduleStatus": state,
        "runStatus": result.status,
        "slices": slices,
    }
    if result.retry_after_seconds:
        outcome["retryAfterSeconds"] = result.retry_after_seconds
        log.info(
            "run %s, module %s: Tiny asked to wait; again in %.1fs",
            run_id,
            module,
            result.retry_after_seconds,
        )
    elif handed_back:
        outcome["handBack"] = True
        log.info(
            "run %s, module %s: slice over after %d step(s); queued again", run_id, module, slices
        )
    elif slices:
        log.info("run %s, module %s: %s after %d step(s)", run_id, module, state, slices)
    else:  # not its turn, done already, held by another executor, or the run is over
        log.info(
            "run %s, module %s: nothing to do (%s, run %s)", run_id, module, state, result.status
        )
    return outcome


def finalize(celery: TinySyncCelery, run_id: str) -> dict[str, Any]:
    """RUNNING → DONE/FAILED once no module is left; a no-op otherwise."""
    svc = celery.services
    with svc.session_factory() as session:
        run = finalize_run(
            session,
            run_id,
            on_finish=lambda rid: notify_run_finished(svc.session_factory, svc.settings, rid),
        )
        log.info("run %s: %s", run.id, run.status)
        return {"runId": run.id, "status": run.status}


def hard_time_limit_passed(celery: TinySyncCelery, run_id: str, module: str) -> None:
    """The module's process was killed at the hard time limit: the run fails, resumable.

    Called by the worker's main process (Celery's `on_failure` for TimeLimitExceeded). The
    soft limit did not stop the module, so sending it again would likely meet the same end:
    the run fails with a sentence, and its notification goes out like any failure's.
    """
    svc = celery.services
    seconds = svc.settings.sync_module_time_limit_seconds
    message = (
        f"o módulo {module} passou do tempo limite de {seconds} s e seu processo foi encerrado"
    )
    with svc.session_factory() as session:
        try:
            fail_run(
                session, run_id, message, on_finish=notifier(svc.session_factory, svc.settings)
            )
        except (NotFoundError, RunStateError) as exc:  # canceled or finished meanwhile
            session.rollback()
            log.warning(
                "run %s, module %s: hard time limit, nothing to fail: %s", run_id, module, exc
            )
            return
    log.error("run %s, module %s: killed at the hard time limit; run failed", run_id, module)
