"""The servers the tests use, and what a test does when one is missing.

A test that needs PostgreSQL or Redis skips on a machine without them, and fails in CI
(`CI=true`), where a skip would hide a broken environment.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "TINYSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("TINYSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(what: str, why: object) -> NoReturn:
    """Skip on a laptop without `what`; fail in CI."""
    message = f"{what} is not available: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: this must not skip)")
    pytest.skip(message)
