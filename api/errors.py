"""The one JSON error shape, `{success: false, error}`, and the boundary that produces it.

    core ValidationError, bad JSON, wrong types   → 400
    missing or wrong credentials                  → 401 (403 for a session without its CSRF)
    core NotFoundError, unknown route             → 404
    wrong method                                  → 405
    core RunStateError / ActiveRunExists          → 409, with the `runId` it is about
    body over MAX_CONTENT_LENGTH                  → 413
    a body that is not JSON                       → 415
    too many failed credentials from a client     → 429 with Retry-After (`api.throttle`)
    anything unexpected                           → 500, generic message, logged
    a dependency the route needs is missing       → 503
    the database is down or restarting            → 503 with Retry-After, logged

Messages are sentences for a person, and never echo a value that might be a secret.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from pydantic import ValidationError as ModelValidationError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from core.db import is_outage
from core.errors import NotFoundError, RunStateError, SyncError, TinyError, ValidationError

log = logging.getLogger(__name__)

MAX_SENTENCES = 3
#: What a client is told to wait when the database is unavailable (a restart takes seconds).
DATABASE_RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    """An HTTP-level refusal raised by the API itself (auth, content type, configuration)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, /, **extra: Any) -> Response:
    """The JSON error body with its status."""
    body = {"success": False, "error": message}
    body.update({key: value for key, value in extra.items() if value is not None})
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Route every error raised while serving a request to its JSON answer."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(ValidationError, _bad_input)
    app.register_error_handler(NotFoundError, _not_found)
    app.register_error_handler(RunStateError, _conflict)
    app.register_error_handler(TinyError, _tiny_error)
    app.register_error_handler(SyncError, _bad_input)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(Exception, _unexpected)


def _api_error(exc: ApiError) -> Response:
    response = error_response(exc.status, exc.message)
    response.headers.update(exc.headers)
    return response


def _bad_input(exc: SyncError) -> Response:
    return error_response(400, str(exc))


def _not_found(exc: NotFoundError) -> Response:
    return error_response(404, str(exc))


def _conflict(exc: RunStateError) -> Response:
    return error_response(409, str(exc), runId=exc.run_id, status=exc.status)


def _tiny_error(exc: TinyError) -> Response:
    # Routes do not call Tiny outside run_step, which records Tiny failures in the run; this
    # is the net under that, and its message may name request details, so it stays generic.
    log.error("a Tiny error escaped a route: %s", exc)
    return error_response(502, "the Tiny API failed; see the run's log and the server log")


def _http_error(exc: HTTPException) -> Response | HTTPException:
    if isinstance(exc.response, Response):
        return exc.response  # built by who raised it (the throttle's 429, with Retry-After)
    if _wants_html():
        return exc  # a person's browser on a page URL gets Flask's own HTML page
    status = exc.code or 500
    response = error_response(status, _http_message(exc))
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response


def _http_message(exc: HTTPException) -> str:
    path = request.path if len(request.path) <= 200 else request.path[:200] + "…"
    if exc.code == 404:
        return f"there is no route {request.method} {path}"
    if isinstance(exc, MethodNotAllowed):
        allowed = sorted(m for m in exc.valid_methods or () if m not in ("HEAD", "OPTIONS"))
        return f"{request.method} is not allowed on {path}; use {' or '.join(allowed)}"
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return f"the request body is larger than the {limit} bytes this server accepts"
    if exc.code == 400:
        return "the request is malformed"
    return exc.description or exc.name


def _wants_html() -> bool:
    if request.path.startswith("/api/"):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _database_error(exc: DBAPIError) -> Response:
    if not is_outage(exc):
        return _unexpected(exc)
    # A connection cut mid-request, or a server down longer than the engine waits for it.
    log.warning("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
    response = error_response(
        503, "the database is unavailable right now; try again in a few seconds"
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(500, "internal error: the server log has the details")


# -- pydantic's errors as sentences ----------------------------------------------------
def describe_validation_error(exc: ModelValidationError) -> str:
    """Pydantic's errors as short sentences a person understands ('companyId must be text')."""
    sentences = [_sentence(error) for error in exc.errors(include_url=False, include_input=False)]
    unique = list(dict.fromkeys(sentences))
    return "; ".join(unique[:MAX_SENTENCES])


def _sentence(error: Any) -> str:
    names = [str(part) for part in error.get("loc", ()) if isinstance(part, str)]
    field = names[0] if names else None
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if field is None:
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            return "the body must be a JSON object"
        return f"the request is not acceptable: {error.get('msg', kind)}"
    sentences = {
        "missing": f"{field} is required",
        "string_type": f"{field} must be text",
        "int_type": f"{field} must be a whole number",
        "int_parsing": f"{field} must be a whole number",
        "int_from_float": f"{field} must be a whole number",
        "decimal_parsing": f"{field} must be a number",
        "decimal_type": f"{field} must be a number",
        "finite_number": f"{field} must be a finite number",
        "decimal_max_places": f"{field} must have at most {ctx.get('decimal_places')} decimals",
        "decimal_max_digits": f"{field} must have at most {ctx.get('max_digits')} digits",
        "bool_type": f"{field} must be true or false",
        "bool_parsing": f"{field} must be true or false",
        "greater_than_equal": f"{field} must be at least {ctx.get('ge')}",
        "less_than_equal": f"{field} must be at most {ctx.get('le')}",
        "string_too_long": f"{field} must be at most {ctx.get('max_length')} characters",
        "too_long": f"{field} must be at most {ctx.get('max_length')} characters",
        "literal_error": f"{field} must be {ctx.get('expected')}",
        "enum": f"{field} must be {ctx.get('expected')}",
        "extra_forbidden": f"{field} is not a field this route takes",
        "model_type": f"{field} must be an object",
        "dict_type": f"{field} must be an object",
        "value_error": f"{field} {ctx.get('error')}",
    }
    if kind in ("string_too_short", "too_short"):
        minimum = ctx.get("min_length", 1)
        return (
            f"{field} must not be empty"
            if minimum == 1
            else f"{field} must be at least {minimum} characters"
        )
    return sentences.get(kind, f"{field} is not acceptable: {error.get('msg', kind)}")
