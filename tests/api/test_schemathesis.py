"""schemathesis against /openapi.json: no server error, no answer that breaks the document."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from tests.support.api import AUTH, CRON, api_settings, create_run, post, step_until_done
from tests.support.services import make_services

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ID_FIELDS = ("runId", "companyId", "before")
EXAMPLES = 30


@pytest.fixture
def fuzzed_app(db_url, sandbox):
    """The app with a short step budget: generated companies get the sandbox's default
    (large) accounts, and each cron call would otherwise step them for 30 seconds."""
    services = make_services(api_settings(db_url, sync_step_budget_seconds=0.2), sandbox)
    yield create_app(services=services)
    services.close()


@pytest.fixture
def real_ids(fuzzed_app, sandbox) -> dict[str, list[str]]:
    """Ids that exist, so generated requests reach the success and conflict paths too."""
    from tests.support.api import small_account
    from tests.support.services import new_company

    company = new_company(fuzzed_app.extensions["tinysync"], sandbox, "tok-fuzz", small_account())
    client = fuzzed_app.test_client()
    finished = create_run(client, company)
    post(client, "start", finished)
    step_until_done(client, finished)
    queued = create_run(client, company)
    return {"runId": [queued, finished], "companyId": [company], "before": [finished]}


def _with_real_ids(values: Any, real_ids: dict[str, list[str]]) -> None:
    # A generated UUID names nothing; swap it (deterministically) for one that exists.
    if not isinstance(values, dict):
        return
    for name in ID_FIELDS:
        value = values.get(name)
        if isinstance(value, str) and _is_uuid(value):
            choices = real_ids[name]
            values[name] = choices[uuid.UUID(value).int % len(choices)]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _takes_input(operation: Any) -> bool:
    return bool(len(operation.body) or len(operation.query) or len(operation.path_parameters))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_conforms_to_its_openapi_document(fuzzed_app, real_ids, mode):
    # Operations one by one with Hypothesis directly: schemathesis' pytest plugin
    # (`from_fixture`) reads a private attribute that pytest 9 no longer has.
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # the report routes too
    if mode is GenerationMode.NEGATIVE:
        operations = [op for op in operations if _takes_input(op)]  # nothing to make invalid

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: Any) -> None:
            for values in (case.body, case.query, case.path_parameters):
                _with_real_ids(values, real_ids)
            headers = CRON if case.path.startswith("/api/cron/") else AUTH
            case.call_and_validate(headers=headers, checks=CHECKS)

        conforms()
