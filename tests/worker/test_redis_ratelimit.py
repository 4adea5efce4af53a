"""`RedisRateLimiter`: Tiny's spacing and concurrency cap per account, across processes.

Each limiter here has its own Redis client, as each worker process does; the spacing tests run
on fakeredis (its Lua) and on a real Redis (REDIS_TEST_URL, under a key prefix of their own).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from core.errors import TinyTransientError
from core.ratelimit import RedisRateLimiter
from core.services import build_limiter
from core.settings import Settings
from tests.support.env import REDIS_TEST_URL, unavailable
from tests.support.processes import RedisServer, free_port

MakeLimiter = Callable[..., RedisRateLimiter]


@pytest.fixture(params=["fakeredis", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> Iterator[MakeLimiter]:
    """Limiters sharing one Redis (fake or real) through clients of their own."""
    prefix = f"tinysync-test:{uuid.uuid4().hex}"
    if request.param == "fakeredis":
        try:
            import fakeredis
            import lupa  # noqa: F401  # fakeredis runs Lua scripts with it
        except ImportError as exc:
            unavailable("fakeredis with Lua (lupa)", exc)
        server = fakeredis.FakeServer()

        def new_client() -> Any:
            return fakeredis.FakeRedis(server=server)
    else:
        probe = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
        try:
            probe.ping()
        except redis.RedisError as exc:
            unavailable("Redis", exc)

        def new_client() -> Any:
            return redis.Redis.from_url(REDIS_TEST_URL)

    def make(min_interval_ms: int, concurrency: int = 1, **kwargs: Any) -> RedisRateLimiter:
        return RedisRateLimiter(new_client(), min_interval_ms, concurrency, prefix=prefix, **kwargs)

    yield make
    if request.param == "redis":
        keys = list(probe.scan_iter(f"{prefix}:*"))
        if keys:
            probe.delete(*keys)


def _scheduled_starts(limiters: list[RedisRateLimiter], calls: int) -> list[float]:
    """Each limiter in its own thread takes `calls` slots of one account, back to back; the
    start times the script gave them (local clock), free of the threads' wake-up lateness."""
    starts: list[float] = []
    lock = threading.Lock()

    def client(limiter: RedisRateLimiter) -> None:
        acquire = limiter._acquire

        def recording(*args: Any, **kwargs: Any) -> int:
            wait_us = int(acquire(*args, **kwargs))
            if wait_us >= 0:
                with lock:
                    starts.append(time.monotonic() + wait_us / 1_000_000)
            return wait_us

        with limiter.slot("warm-up"):  # the first script call loads it (and fakeredis's Lua)
            pass
        limiter._acquire = recording  # type: ignore[method-assign]
        for _ in range(calls):
            with limiter.slot("account-1"):
                pass

    threads = [threading.Thread(target=client, args=(lim,)) for lim in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(starts)


def test_calls_of_one_account_start_an_interval_apart_across_processes(make_limiter):
    limiters = [make_limiter(30), make_limiter(30)]
    seconds, micros = limiters[0].client.time()
    began = seconds * 1_000_000 + micros
    starts = _scheduled_starts(limiters, calls=10)
    # On Redis's clock, exactly: 20 reservations took at least 20 intervals (more only when
    # a caller came late, which a loaded machine can make happen).
    next_free = int(limiters[0].client.get(limiters[0].keys("account-1")[0]))
    assert 20 * 30_000 <= next_free - began < 20 * 30_000 * 3
    # On this host's clock single gaps carry thread scheduling noise; their mean does not.
    assert (starts[-1] - starts[0]) / (len(starts) - 1) > 0.030 * 0.9, starts


def test_no_more_than_the_concurrency_hold_a_slot_at_once(make_limiter):
    limiters = [make_limiter(0, 2) for _ in range(5)]
    in_flight, peak = 0, 0
    lock = threading.Lock()

    def client(limiter: RedisRateLimiter) -> None:
        nonlocal in_flight, peak
        for _ in range(3):
            with limiter.slot("account-1"):
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
                time.sleep(0.02)
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=client, args=(lim,)) for lim in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2


def test_a_slot_left_by_a_killed_holder_frees_itself_after_its_ttl(make_limiter):
    dead = make_limiter(0, 1, slot_ttl_seconds=0.3).slot("account-1")
    dead.__enter__()  # its process dies holding the slot: never released
    started = time.monotonic()
    with make_limiter(0, 1, slot_ttl_seconds=0.3).slot("account-1"):
        waited = time.monotonic() - started
    assert 0.2 <= waited < 2


def test_accounts_do_not_wait_for_each_other(make_limiter):
    limiter = make_limiter(500)
    with limiter.slot("account-1"):
        pass
    started = time.monotonic()
    with limiter.slot("account-2"):
        assert time.monotonic() - started < 0.1


def test_an_unreachable_redis_fails_the_call_as_a_transient_tiny_error():
    limiter = RedisRateLimiter.from_url(
        f"redis://127.0.0.1:{free_port()}/0", 100, 1, outage_seconds=0.3
    )
    with pytest.raises(TinyTransientError, match="Redis that paces Tiny calls is unreachable"):
        with limiter.slot("account-1"):
            pass


def test_the_limiter_rides_out_a_redis_restart(redis_server: RedisServer):
    limiter = RedisRateLimiter.from_url(redis_server.url(3), 10, 1)
    failures: list[BaseException] = []
    stop = threading.Event()

    def calls() -> None:
        try:
            while not stop.is_set():
                with limiter.slot("account-1"):
                    pass
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=calls)
    thread.start()
    try:
        time.sleep(0.1)
        redis_server.restart(down_seconds=0.5)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert failures == []


def test_services_pace_through_redis_whenever_a_redis_broker_is_configured():
    settings = Settings(celery_broker_url="redis://127.0.0.1:1/0", tiny_timeout_seconds=7)
    limiter = build_limiter(settings)
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.interval_us == settings.tiny_min_interval_ms * 1000
    assert limiter.slot_ttl_us == 14_000_000  # outlasts a slow connect plus a slow read
