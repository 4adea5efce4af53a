"""Fixtures for the worker's tests: PostgreSQL, a private Redis, the sandbox over HTTP, and a
deployment of worker, beat and Flower processes (`tests.support.deployment`).

The Redis is a `redis-server` of the test session's own on a free port (the machine's shared
Redis is never flushed or restarted); each test empties it before it starts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from sandbox import Sandbox
from tests.support.databases import empty_tables
from tests.support.deployment import ADMIN_TOKEN, Deployment, HttpSandbox, sandbox_over_http
from tests.support.env import unavailable
from tests.support.processes import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for this test session."""
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except (OSError, TimeoutError) as exc:
        unavailable("Redis (redis-server)", exc)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_sandbox() -> Iterator[HttpSandbox]:
    """One sandbox served over HTTP for the session; tests use their own tokens."""
    sb = Sandbox()
    with sandbox_over_http(sb) as url:
        yield HttpSandbox(sb, url)


@pytest.fixture
def token(request: pytest.FixtureRequest) -> str:
    """A Tiny token of this test's own."""
    return f"tok-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def deploy(
    pg_database: str, redis_server: RedisServer, http_sandbox: HttpSandbox, tmp_path: Path
) -> Iterator[Callable[..., Deployment]]:
    """Build a deployment with environment overrides (e.g. SYNC_LEASE_SECONDS="3")."""
    empty_tables(pg_database)
    redis.Redis.from_url(redis_server.url(0)).flushdb()
    made: list[Deployment] = []

    def make(**env: str) -> Deployment:
        values = {
            "DATABASE_URL": pg_database,
            "CELERY_BROKER_URL": redis_server.url(0),
            "TINY_API_URL": http_sandbox.url,
            "SECRET_KEY": "worker-tests-secret-0123456789abcdef",
            "SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
            "TINY_MIN_INTERVAL": "0",
            "TINY_CONCURRENCY": "4",
            "TINY_TIMEOUT_SECONDS": "5",
            "TINY_RETRY_BASE_SECONDS": "0.05",
            "TINY_RATE_LIMIT_BACKOFF_SECONDS": "1",
            "TINY_MAX_ENRICH_PER_RUN": "10000",
            "SYNC_LEASE_SECONDS": "30",
            "SYNC_REAPER_INTERVAL_SECONDS": "1",
            "SYNC_BEAT_INTERVAL_MINUTES": "0",
            **env,
        }
        deployment = Deployment(values, tmp_path, http_sandbox.sandbox)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()
