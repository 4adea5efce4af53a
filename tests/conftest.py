"""Shared fixtures: real databases (SQLite and PostgreSQL), the sandbox, and services.

A test that needs PostgreSQL or Redis skips on a machine without them, and fails in CI
(`CI=true`), where a skip would hide a broken environment (`tests.support.env`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from core.services import Services
from sandbox import Sandbox
from tests.support.databases import empty_tables, fresh_postgres, migrated_sqlite
from tests.support.env import PG_ADMIN_URL, unavailable
from tests.support.services import make_services, make_settings


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(fresh_postgres(PG_ADMIN_URL))
        except OperationalError as exc:  # the server cannot be reached: "no PostgreSQL here"
            unavailable("PostgreSQL", exc)
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite in a temp file, and PostgreSQL."""
    if request.param == "sqlite":
        return migrated_sqlite(tmp_path / "tinysync.db")
    url: str = request.getfixturevalue("pg_database")
    empty_tables(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite database (for tests where the dialect does not matter)."""
    return migrated_sqlite(tmp_path / "tinysync.db")


@pytest.fixture
def sandbox() -> Sandbox:
    """A fresh in-process fake of Tiny with generous limits."""
    return Sandbox()


@pytest.fixture
def services(db_url: str, sandbox: Sandbox) -> Iterator[Services]:
    """Services on each database, wired to the sandbox."""
    svc = make_services(make_settings(db_url), sandbox)
    yield svc
    svc.close()
