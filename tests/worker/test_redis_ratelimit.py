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

        def recording(*args: Any, **kwargs: Any) -> list[int]:
            answer = acquire(*args, **kwargs)
            wait_us = int(answer[0])
            if wait_us >= 0:
                with lock:
                    starts.append(time.monotonic() + wait_us / 1_000_000)
            return answer

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
    # On Redis's clock, exactly: 20 reservations took at least 19 intervals after the first
    # (more only when a caller came late, which a loaded machine can make happen).
    last_start = int(limiters[0].client.get(limiters[0].keys("account-1")[0]))
    assert 19 * 30_000 <= last_start - began < 20 * 30_000 * 3
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


# -- per-account pacing from the limit Tiny announces (issue 11) -----------------------------
def _last_start(limiter: RedisRateLimiter, key: str) -> int:
    return int(limiter.client.get(limiter.keys(key)[0]))


def test_a_limit_announced_to_one_process_paces_the_account_in_every_process(make_limiter):
    told, other = make_limiter(1000), make_limiter(1000)
    told.observe_limit("account-1", 600)  # 600 a minute less 5%: 105,263 µs apart
    with other.slot("account-1"):
        first = _last_start(other, "account-1")
    with other.slot("account-1"):
        second = _last_start(other, "account-1")
    # On Redis's clock: the announced interval, not the 1 s start pace (more only when the
    # second call came late).
    assert 105_263 <= second - first < 1_000_000
    stats = told.stats(["account-1"])["account-1"]
    assert stats.calls == 2 and stats.announced_limit == 600
    assert stats.pace_per_minute == pytest.approx(570, rel=1e-3)


def test_an_override_wins_over_the_announced_limit(make_limiter):
    told, overriding = make_limiter(1000), make_limiter(1000)
    told.observe_limit("account-1", 60)  # 1.05 s apart ...
    overriding.override("account-1", 6000)  # ... but this company says 6000 a minute
    with overriding.slot("account-1"):
        first = _last_start(overriding, "account-1")
    started = time.monotonic()
    with overriding.slot("account-1"):
        second = _last_start(overriding, "account-1")
    assert 10_526 <= second - first < 1_050_000
    assert time.monotonic() - started < 1.0
    overriding.override("account-1", None)  # Tiny's figure again
    with overriding.slot("account-1"):
        third = _last_start(overriding, "account-1")
    assert third - second >= 1_052_631


def test_the_announced_limit_is_written_when_it_changes_not_on_every_answer(make_limiter):
    limiter = make_limiter(1000)
    pace_key = limiter.keys("account-1")[2]
    limiter.observe_limit("account-1", 600)
    assert int(limiter.client.get(pace_key)) == 105_263
    assert 0 < limiter.client.ttl(pace_key) <= 24 * 3600
    limiter.client.set(pace_key, 123_456)  # marks whether the next answer writes again
    limiter.observe_limit("account-1", 600)
    assert int(limiter.client.get(pace_key)) == 123_456  # the same figure: no write
    limiter.observe_limit("account-1", 300)
    assert int(limiter.client.get(pace_key)) == 210_526  # a new plan: written
    limiter.client.delete(pace_key)  # expired, or Redis restarted empty
    with limiter.slot("account-1"):  # the script says it is gone ...
        pass
    limiter.observe_limit("account-1", 300)  # ... so the next answer writes it again
    assert int(limiter.client.get(pace_key)) == 210_526


def test_per_account_figures_add_up_over_processes(make_limiter):
    one, two, scraper = make_limiter(0, 2), make_limiter(0, 2), make_limiter(0)
    for limiter, calls in ((one, 3), (two, 2)):
        for _ in range(calls):
            with limiter.slot("account-1"):
                pass
    one.refused("account-1", 6)
    two.refused("account-1", 11)
    two.refused("account-1", 11)
    one.observe_limit("account-1", 120)
    with one.slot("account-2"):
        pass
    stats = scraper.stats(["account-1", "account-2", "never-called"])
    assert set(stats) == {"account-1", "account-2"}
    assert stats["account-1"].calls == 5 and stats["account-2"].calls == 1
    assert dict(stats["account-1"].refused) == {6: 1, 11: 2}
    assert stats["account-1"].announced_limit == 120
    assert stats["account-2"].announced_limit is None
    assert stats["account-1"].wait_seconds >= 0


def test_two_accounts_on_different_plans_are_paced_to_their_own_in_real_time():
    """Two processes (limiters of their own) on one real Redis, each syncing one account.

    The sandbox's window is 20 s instead of Tiny's minute, so a plan is its calls per minute
    scaled to 20 s (30 a minute: 10 calls); the margin (5%) leaves a second of slack there.
    """
    probe = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        probe.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    from sandbox import AccountSpec, Sandbox, SandboxTransport

    window, seconds = 20.0, 21.0
    sandbox = Sandbox()
    for token, per_minute in (("tok-30", 30), ("tok-120", 120)):
        calls = round(per_minute * window / 60)
        spec = AccountSpec(orders=20, days=10, products=3, payables=3, receivables=3,
                           rate_limit_calls=calls, rate_limit_window_seconds=window)  # fmt: skip
        sandbox.add_account(token, spec)
        assert spec.calls_per_minute == per_minute
    prefix = f"tinysync-test:{uuid.uuid4().hex}"
    settings = Settings(tiny_api_url="sandbox", tiny_max_retries=0)  # a code 6 would raise
    answered: dict[str, list[float]] = {}
    failures: list[BaseException] = []

    def sync(token: str) -> None:
        from core.tiny import TinyClient

        limiter = RedisRateLimiter(redis.Redis.from_url(REDIS_TEST_URL), 1000, 1, prefix=prefix)
        client = TinyClient(
            settings, transport=SandboxTransport(sandbox), limiter=limiter, base_url="http://sb"
        )
        began = time.monotonic()
        moments = answered[token] = []
        try:
            while time.monotonic() - began < seconds:
                client.call(token, "pedidos.pesquisa.php", account=token)
                moments.append(time.monotonic())
        except BaseException as exc:
            failures.append(exc)
        client.close()

    threads = [threading.Thread(target=sync, args=(t,)) for t in ("tok-30", "tok-120")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        keys = list(probe.scan_iter(f"{prefix}:*"))
        if keys:
            probe.delete(*keys)
    assert failures == []
    for token, per_minute in (("tok-30", 30), ("tok-120", 120)):
        assert sandbox.counters(token).rate_limit_violations == 0, token
        # Utilisation: calls x the interval the plan allows / the time they took (the first
        # call waits for nothing, so it is the start of the span, not one of its calls).
        moments = answered[token]
        span = moments[-1] - moments[0]
        used = (len(moments) - 1) * (60 / per_minute) / span
        print(f"{token}: {len(moments)} calls in {span:.1f}s, utilisation {used:.2f}")
        assert 0.9 <= used <= 1.0, (token, len(moments), span)
