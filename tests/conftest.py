"""Shared fixtures: real databases (SQLite and PostgreSQL), the sandbox, and services.

A test that needs PostgreSQL or Redis skips on a machine without them, and fails in CI
(`CI=true`), where a skip would hide a broken environment.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from core.companies import add_company
from core.db import make_engine
from core.migrate import upgrade
from core.models import Base
from core.services import Services, build_services
from core.settings import Settings
from core.steps import StepResult, run_step
from sandbox import AccountSpec, Sandbox, SandboxTransport

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "TINYSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("TINYSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(what: str, why: object) -> None:
    """Skip on a laptop without `what`; fail in CI."""
    message = f"{what} is not available: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: this must not skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head."""
    name = f"tinysync_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server means "no PostgreSQL here"
        unavailable("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    engine = make_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite in a temp file, and PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tinysync.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("pg_database")
    _truncate(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite database (for tests where the dialect does not matter)."""
    url = f"sqlite:///{tmp_path / 'tinysync.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def sandbox() -> Sandbox:
    """A fresh in-process fake of Tiny with generous limits."""
    return Sandbox()


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


@pytest.fixture
def services(db_url: str, sandbox: Sandbox) -> Iterator[Services]:
    """Services on each database, wired to the sandbox."""
    svc = make_services(make_settings(db_url), sandbox)
    yield svc
    svc.close()


def fast_spec(**overrides: Any) -> AccountSpec:
    """An account whose rate limits stay out of the way unless a test sets them."""
    values: dict[str, Any] = dict(
        orders=300, days=120, products=25, rate_limit_calls=1_000_000, max_concurrent=1000
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
