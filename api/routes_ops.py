"""What operators and machines poll: health, metrics, the OpenAPI document, and a ping."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from api.auth import bearer_token, same_secret
from api.errors import ApiError
from api.openapi import answers, document, spec
from api.schemas import HealthAnswer, PingAnswer
from api.state import ApiState, state
from core.models import SyncRun

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)
TAGS = ["operations"]
OK, UNAVAILABLE, NOT_CONFIGURED = "ok", "unavailable", "not configured"
BROKER_TIMEOUT_SECONDS = 2.0


@bp.get("/healthz")
@spec.validate(resp=answers(HealthAnswer, HTTP_503=HealthAnswer), tags=TAGS)
def healthz() -> tuple[Response, int]:
    """The database (with its schema) and, when configured, the broker; 503 if one is down."""
    st = state()
    checks = {"database": _check_database(st), "broker": _check_broker(st)}
    healthy = all(value != UNAVAILABLE for value in checks.values())
    body = {
        "success": healthy,
        "status": OK if healthy else UNAVAILABLE,
        "executor": st.services.settings.executor,
        "checks": checks,
    }
    return jsonify(body), 200 if healthy else 503


@bp.get("/api/ping")
@spec.validate(resp=answers(PingAnswer), tags=TAGS)
def ping() -> Response:
    """A trivial JSON answer, for load balancers and as the benchmark's baseline."""
    return jsonify(ok=True)


@bp.get("/metrics")
@spec.validate(resp=answers(None, 401, 429), tags=TAGS)
def metrics() -> Response:
    """Prometheus metrics. With `Authorization: Bearer <METRICS_TOKEN>`: runs by status,
    records per module, Tiny calls, step durations; without a token: the process only."""
    expected = state().services.settings.metrics_token
    given = bearer_token()
    if given is not None and not (expected and same_secret(given, expected)):
        raise ApiError(
            401,
            "the metrics token is wrong",
            headers={"WWW-Authenticate": 'Bearer realm="tinysync metrics"'},
        )
    private = given is not None
    body = state().metrics.render(private=private)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
@spec.validate(resp=answers(None), tags=TAGS)
def openapi() -> Response:
    """This document."""
    return jsonify(document())


def _check_database(st: ApiState) -> str:
    # Reading the runs table proves the connection and that migrations ran.
    try:
        with st.services.session_factory() as session:
            session.execute(select(SyncRun.id).limit(1))
    except SQLAlchemyError:
        log.exception("health check: the database is unavailable")
        return UNAVAILABLE
    return OK


def _check_broker(st: ApiState) -> str:
    url = st.services.settings.celery_broker_url
    if not url:
        return NOT_CONFIGURED
    try:
        if st.broker is not None:
            st.broker.ping()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
                conn.ensure_connection(max_retries=1)
    except Exception:  # each broker library has its own errors; any of them means "down"
        log.exception("health check: the broker is unavailable")
        return UNAVAILABLE
    return OK
