"""`POST /api/cron/sync`: an incremental run for every active company without one.

With Celery the runs are enqueued. Inline (serverless hosts, where a cron request is the only
executor) the route also steps the runs it started and the company runs already RUNNING, for
one step budget in total, round robin, and says what it did.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify

from api.openapi import CRON, answers, spec
from api.routes import execute_step, hand_to_workers, require_queue
from api.schemas import CronAnswer
from api.state import services, state
from core.companies import list_companies
from core.errors import ActiveRunExists
from core.runs import RunStatus, create_run, get_run, start_run

bp = Blueprint("cron", __name__, url_prefix="/api/cron")


@bp.post("/sync")
@spec.validate(resp=answers(CronAnswer, 401, 503), tags=["cron"], security=CRON)
def sync() -> Response:
    """Create and start an incremental run for every active company that has no active run."""
    require_queue()
    st = state()
    svc = services()
    created: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    to_step: list[str] = []
    with svc.session_factory() as session:
        for company in list_companies(session, active_only=True):
            try:
                run = create_run(
                    session,
                    svc.settings,
                    company_id=company.id,
                    mode="incremental",
                    triggered_by="cron",
                )
            except ActiveRunExists as exc:
                skipped.append({"companyId": company.id, "activeRunId": exc.run_id})
                if exc.run_id and get_run(session, exc.run_id).status == RunStatus.RUNNING:
                    to_step.append(exc.run_id)
                continue
            run = start_run(session, run.id)
            if st.celery:
                hand_to_workers(session, run.id)
            created.append({"companyId": company.id, "runId": run.id, "status": run.status})
            to_step.insert(len(created) - 1, run.id)  # new runs first, then the older ones
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
