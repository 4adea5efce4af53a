"""Services for tests wired to the in-process sandbox: settings that never wait, companies on
sandbox accounts, and stepping a run to its end as the CLI does."""

from __future__ import annotations

import time
from typing import Any

from core.companies import add_company
from core.runs import create_run, start_run
from core.services import Services, build_services
from core.settings import Settings
from core.steps import StepResult, run_step
from sandbox import AccountSpec, Sandbox, SandboxTransport

FAST = dict(
    tiny_api_url="sandbox",
    tiny_min_interval_ms=0,
    tiny_concurrency=4,
    tiny_retry_base_seconds=0.001,
    tiny_rate_limit_backoff_seconds=0.01,
    tiny_max_retries=2,
    tiny_max_enrich_per_run=10_000,
    sync_step_budget_seconds=30.0,
    sync_lease_seconds=30.0,
    secret_key="test-secret-key",
)


def make_settings(db_url: str, **overrides: Any) -> Settings:
    """Settings for tests: the sandbox, no waiting, the given database."""
    return Settings(**{**FAST, "database_url": db_url, **overrides})


def make_services(settings: Settings, sandbox: Sandbox) -> Services:
    """Services wired to the in-process sandbox."""
    return build_services(settings, transport=SandboxTransport(sandbox))


def fast_spec(**overrides: Any) -> AccountSpec:
    """An account whose rate limits stay out of the way unless a test sets them.

    It announces no `x-limit-api`, so the client paces it at the test's TINY_MIN_INTERVAL
    (the pace without a header) and a test that sets a tight limit still meets it.
    """
    values: dict[str, Any] = dict(
        orders=300,
        days=120,
        products=25,
        rate_limit_calls=1_000_000,
        max_concurrent=1000,
        announce_limit=False,
    )
    values.update(overrides)
    return AccountSpec(**values)


def new_company(
    services: Services, sandbox: Sandbox, token: str, spec: AccountSpec | None = None
) -> str:
    """Add an account to the sandbox and a company for it; returns the company id."""
    sandbox.add_account(token, spec or fast_spec())
    with services.session_factory() as session:
        company = add_company(session, services.settings, name=f"Company {token}", token=token)
        session.commit()
        return company.id


def step_until_done(services: Services, run_id: str, max_steps: int = 500) -> StepResult:
    """Call run_step until the run has nothing more to do."""
    for _ in range(max_steps):
        result = run_step(services.session_factory, services.settings, services.client, run_id)
        if not result.has_more:
            return result
        if result.retry_after_seconds:
            time.sleep(result.retry_after_seconds)  # Tiny asked for a pause
        elif result.executed is None:
            time.sleep(0.01)  # another caller holds the lease: wait as a polling UI would
    raise AssertionError(f"run {run_id} still has work after {max_steps} steps")


def run_month(services: Services, company_id: str, month: str) -> str:
    """Create, start and step a period run of `month` to its end; returns its id."""
    with services.session_factory() as session:
        run = create_run(
            session, services.settings, company_id=company_id, mode="period", month=month
        )
        start_run(session, run.id)
    step_until_done(services, run.id)
    return run.id
