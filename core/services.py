"""The long-lived parts a driver needs, built once from settings and passed in everywhere."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from core.settings import Settings
from core.tiny import TinyClient
from core.v3.access import V3Access


@dataclass
class Services:
    """Settings plus the database and the Tiny client built from them."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    client: TinyClient
    limiter: RateLimiter

    def close(self) -> None:
        """Release connections."""
        self.client.close()
        self.engine.dispose()


def build_limiter(settings: Settings) -> RateLimiter:
    """Redis-backed pacing when a Redis is configured (shared by all processes), else local."""
    redis_url = settings.shared_redis_url
    if redis_url:
        # A slot is held for one call; twice the timeout covers a slow connect plus a slow read.
        return RedisRateLimiter.from_url(
            redis_url,
            settings.tiny_min_interval_ms,
            settings.tiny_concurrency,
            margin=settings.tiny_limit_margin,
            slot_ttl_seconds=2 * settings.tiny_timeout_seconds,
        )
    return LocalRateLimiter(
        settings.tiny_min_interval_ms,
        settings.tiny_concurrency,
        margin=settings.tiny_limit_margin,
    )


def http_transport(threads: int) -> httpx.HTTPTransport:
    """An HTTP transport for `threads` threads calling Tiny at once, each on a kept-alive
    connection (httpx's default pool keeps 20 alive, so more threads would reconnect)."""
    return httpx.HTTPTransport(
        limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    )


def pool_sizes(threads: int) -> dict[str, int]:
    """SQLAlchemy pool sizes for `threads` threads that each hold a connection only for one
    statement or one page's commit, never across a Tiny call or a rate-limit wait.

    Measured with 100 accounts on 128 threads (bench/many_accounts.py): at most a dozen
    connections in use at once. PostgreSQL allows 100 in all by default, shared with the API.
    """
    return {"pool_size": min(threads, 10), "max_overflow": min(threads, 10)}


def build_services(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    limiter: RateLimiter | None = None,
    engine: Engine | None = None,
    threads: int | None = None,
) -> Services:
    """Wire the engine, sessions, limiter and Tiny client for `settings`.

    `threads`: how many threads will use these services at once (the worker's pool); the
    database pool and the HTTP connection pool are sized for it.
    """
    if settings.uses_sandbox and transport is None:
        raise ValueError("TINY_API_URL=sandbox needs the sandbox transport from the caller")
    if threads is not None:
        engine = engine or make_engine(settings, **pool_sizes(threads))
    engine = engine or make_engine(settings)
    limiter = limiter or build_limiter(settings)
    base_url = "http://sandbox.local/api2" if settings.uses_sandbox else None
    client = TinyClient(settings, transport=transport, limiter=limiter, base_url=base_url)
    client.v3 = V3Access.build(settings, transport=transport, limiter=limiter)
    return Services(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        client=client,
        limiter=limiter,
    )
