"""The seed's sync routes and the run history: `/api/admin/sync/v2/*`.

Each route validates its input, calls one `core.runs` / `core.steps` function and answers its
JSON; the executor (inline steps or Celery) is the only thing that changes between setups.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.openapi import ADMIN, ADMIN_ERRORS, BODY_ERRORS, answers, spec
from api.run_views import has_more, log_view, progress_view, run_status, run_summary
from api.schemas import (
    CreateRunBody,
    LogsAnswer,
    LogsQuery,
    RunIdBody,
    RunsAnswer,
    RunsQuery,
    RunState,
    StatusAnswer,
    StatusQuery,
    StepAnswer,
)
from api.state import services, state
from api.status import status_etag
from core.companies import check_id
from core.models import SyncRun
from core.runs import (
    RunStatus,
    cancel_run,
    create_run,
    get_run,
    list_logs,
    list_runs,
    notifier,
    resume_run,
    start_run,
)
from core.steps import StepResult, run_step

log = logging.getLogger(__name__)

bp = Blueprint("sync", __name__, url_prefix="/api/admin/sync/v2")
TAGS = ["sync runs"]
#: Browsers and proxies may keep the status but must ask again each time (with the ETag).
STATUS_CACHE_CONTROL = "no-cache, private"


# -- the seed's routes ------------------------------------------------------------------
@bp.post("/create")
@spec.validate(
    resp=answers(RunState, *ADMIN_ERRORS, *BODY_ERRORS, 404, 409), tags=TAGS, security=ADMIN
)
def create(json: CreateRunBody) -> Response:
    """Create a QUEUED run and return its id at once."""
    svc = services()
    with svc.session_factory() as session:
        run = create_run(
            session,
            svc.settings,
            company_id=json.companyId,
            mode=json.mode,
            month=json.month,
            start_date=json.startDate,
            end_date=json.endDate,
            triggered_by=_caller(),
        )
        return _run_state(run)


@bp.post("/start")
@spec.validate(
    resp=answers(RunState, *ADMIN_ERRORS, *BODY_ERRORS, 404, 409), tags=TAGS, security=ADMIN
)
def start(json: RunIdBody) -> Response:
    """QUEUED → RUNNING; with Celery, hand the run to the workers."""
    require_queue()
    with services().session_factory() as session:
        was_queued = get_run(session, json.runId).status == RunStatus.QUEUED.value
        run = start_run(session, json.runId)
        # A second start of a RUNNING run is a no-op; enqueueing it again would only make
        # a second chain wait for the lease.
        if was_queued and state().celery:
            hand_to_workers(session, run.id)
        return _run_state(get_run(session, run.id))


@bp.post("/step")
@spec.validate(
    resp=answers(StepAnswer, *ADMIN_ERRORS, *BODY_ERRORS, 404, 409), tags=TAGS, security=ADMIN
)
def step(json: RunIdBody) -> Response:
    """Inline: run the next slice of the run. Celery: execute nothing, answer the same body."""
    if state().celery:
        with services().session_factory() as session:
            run = get_run(session, json.runId)
            result = StepResult(
                run_id=run.id,
                status=run.status,
                current_module=run.currentModule,
                progress=progress_view(run),
                has_more=has_more(run),
                executed=None,
            )
    else:
        result = execute_step(json.runId)
    answer = result.as_json()
    if result.retry_after_seconds:  # Tiny's pause: the page waits this long, and says so
        answer["retryAfterSeconds"] = round(result.retry_after_seconds, 1)
    return jsonify(answer)


@bp.get("/status")
@spec.validate(
    query=StatusQuery,
    resp=answers(StatusAnswer, *ADMIN_ERRORS, 404, HTTP_304=None),
    tags=TAGS,
    security=ADMIN,
)
def status(query: StatusQuery) -> Response:
    """Status, progress, timestamps and latest logs; `304` to `If-None-Match` while unchanged.

    The ETag follows what the run shows: it changes with every status, progress or log
    change. `durationSeconds` of an unfinished run is the clock, not a change: a 304 keeps
    the value the client has.
    """
    etag = status_etag(services().engine, query.runId)
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        run_id = check_id(query.runId, "runId")
        bodies = state().status_bodies
        body = bodies.get(run_id, etag)
        if body is None:
            # Read after the ETag: if the run moves in between, this body is newer than its
            # ETag, and no later poll will match that ETag again. Never the other way round.
            with services().session_factory() as session:
                body = jsonify({"success": True, **run_status(session, run_id)}).get_data()
            bodies.put(run_id, etag, body)
        response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = STATUS_CACHE_CONTROL
    return response


@bp.post("/cancel")
@spec.validate(
    resp=answers(RunState, *ADMIN_ERRORS, *BODY_ERRORS, 404, 409), tags=TAGS, security=ADMIN
)
def cancel(json: RunIdBody) -> Response:
    """Cancel a QUEUED or RUNNING run; it stops before its next Tiny call."""
    svc = services()
    with svc.session_factory() as session:
        run = cancel_run(
            session,
            json.runId,
            reason=CANCELED_VIA[_caller()],
            on_finish=notifier(svc.session_factory, svc.settings),  # NOTIFY_ON=all
        )
        return _run_state(run)


# -- beyond the seed --------------------------------------------------------------------
@bp.post("/resume")
@spec.validate(
    resp=answers(RunState, *ADMIN_ERRORS, *BODY_ERRORS, 404, 409), tags=TAGS, security=ADMIN
)
def resume(json: RunIdBody) -> Response:
    """FAILED → RUNNING again, re-running only the modules that failed."""
    require_queue()
    with services().session_factory() as session:
        run = resume_run(session, json.runId)
        if state().celery:
            hand_to_workers(session, run.id)
        return _run_state(get_run(session, run.id))


@bp.get("/runs")
@spec.validate(query=RunsQuery, resp=answers(RunsAnswer, *ADMIN_ERRORS), tags=TAGS, security=ADMIN)
def runs(query: RunsQuery) -> Response:
    """The run history, newest first; pass `nextCursor` as `before` for the next page."""
    with services().session_factory() as session:
        found, next_cursor = list_runs(
            session,
            company_id=query.companyId,
            status=query.status,
            limit=query.limit,
            before=query.before,
        )
        return jsonify(
            success=True, runs=[run_summary(run) for run in found], nextCursor=next_cursor
        )


@bp.get("/runs/<runId>/logs")
@spec.validate(
    query=LogsQuery,
    resp=answers(LogsAnswer, *ADMIN_ERRORS, 404),
    tags=TAGS,
    security=ADMIN,
    path_parameter_descriptions={"runId": "the run's id"},
)
def logs(runId: str, query: LogsQuery) -> Response:
    """A run's log, newest first; pass `nextCursor` as `before` for the next page."""
    with services().session_factory() as session:
        run = get_run(session, runId)
        entries, next_cursor = list_logs(session, run.id, limit=query.limit, before=query.before)
        return jsonify(
            success=True,
            runId=run.id,
            logs=[log_view(entry) for entry in entries],
            nextCursor=next_cursor,
        )


# -- helpers shared with the cron route -------------------------------------------------
def execute_step(run_id: str, *, budget_seconds: float | None = None) -> StepResult:
    """Run one slice of the run in this process, and time it."""
    svc = services()
    started = time.perf_counter()
    result = run_step(
        svc.session_factory, svc.settings, svc.client, run_id, budget_seconds=budget_seconds
    )
    state().metrics.observe_step(result.executed, time.perf_counter() - started)
    return result


def hand_to_workers(session: Session, run_id: str) -> None:
    """Enqueue the run for the Celery workers, or cancel it and answer 503.

    A RUNNING run that no worker will ever pick up would block its company's next run, so a
    broker failure must not leave one behind.
    """
    enqueue = state().enqueue
    assert enqueue is not None  # checked by require_queue before any transition
    try:
        enqueue(run_id)
    except Exception as exc:  # whatever the broker library raises: recorded, logged, answered
        log.exception("could not enqueue run %s", run_id)
        cancel_run(
            session,
            run_id,
            reason=f"não foi possível entregar a execução aos workers: {type(exc).__name__}",
            on_finish=notifier(services().session_factory, services().settings),
        )
        raise ApiError(
            503, "the worker queue could not be reached; the run was canceled, try again later"
        ) from exc


def require_queue() -> None:
    """Refuse (503) a transition Celery should execute when no queue was wired in."""
    if state().celery and state().enqueue is None:
        raise ApiError(503, "the worker queue is not configured")


def _run_state(run: SyncRun) -> Response:
    return jsonify(success=True, runId=run.id, status=run.status)


#: The log line of a cancel, by who asked (`_caller`).
CANCELED_VIA = {"api": "Cancelada pela API", "web": "Cancelada pela interface web"}


def _caller() -> str:
    """Who asked, for the run's `triggeredByUserId`: the API token or the web UI."""
    return "api" if "Authorization" in request.headers else "web"
