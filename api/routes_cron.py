"""`POST /api/cron/sync`: an incremental run for every active company without one.

With Celery the runs are enqueued. Inline (serverless hosts, where a cron request is the only
executor) the route also steps the runs it started and the company runs already RUNNING, for
one step budget in total, round robin, and says what it did.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify

from api.errors import ApiError
from api.openapi import CRON, answers, spec
from api.routes import execute_step, require_queue
from api.schemas import CronAnswer
from api.state import services, state
from core.runs import RunStatus, get_run, start_incremental_runs

bp = Blueprint("cron", __name__, url_prefix="/api/cron")


@bp.post("/sync")
@spec.validate(resp=answers(CronAnswer, 401, 429, 503), tags=["cron"], security=CRON)
def sync() -> Response:
    """Create and start an incremental run for every active company that has no active run."""
    require_queue()
    st = state()
    svc = services()
    with svc.session_factory() as session:
        outcome = start_incremental_runs(
            session,
            svc.settings,
            triggered_by="cron",
            hand_over=st.enqueue if st.celery else None,
        )
        if outcome.failed and not outcome.created:
            raise ApiError(
                503,
                "the worker queue could not be reached; the runs were canceled, try again later",
            )
        created = [
            {"companyId": run.companyId, "runId": run.id, "status": run.status}
            for run in outcome.created
        ]
        skipped = [
            {"companyId": company_id, "activeRunId": run_id}
            for company_id, run_id in outcome.skipped
        ]
        # New runs first, then the company runs already RUNNING (QUEUED ones wait for a person).
        to_step = [run.id for run in outcome.created] + [
            run_id
            for _, run_id in outcome.skipped
            if run_id and get_run(session, run_id).status == RunStatus.RUNNING
        ]
    steps = [] if st.celery else _step_round_robin(to_step, svc.settings.sync_step_budget_seconds)
    return jsonify(
        success=True,
        executor=svc.settings.executor,
        created=created,
        skipped=skipped,
        steps=steps,
    )


def _step_round_robin(run_ids: list[str], budget_seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + budget_seconds
    pending = list(run_ids)
    steps: list[dict[str, Any]] = []
    while pending and (remaining := deadline - time.monotonic()) > 0:
        run_id = pending.pop(0)
        result = execute_step(run_id, budget_seconds=remaining)
        steps.append(
            {
                "runId": run_id,
                "executed": result.executed,
                "status": result.status,
                "hasMore": result.has_more,
            }
        )
        # A step that executed nothing (another executor holds the lease) would only spin.
        if result.has_more and result.executed is not None:
            pending.append(run_id)
    return steps
