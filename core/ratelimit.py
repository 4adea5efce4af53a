"""Per-account pacing of Tiny calls: an interval between calls and a concurrency cap.

Tiny counts calls per account, so the key is the account (a hash of its token), not the
company. Each key's interval comes from, in order: a per-company override (`override`), the
limit Tiny announces on its answers (`observe_limit`, less a margin), and `min_interval_ms`
(the pace before any answer, and the fallback). `LocalRateLimiter` holds within one process;
`RedisRateLimiter` holds across every process and machine that shares one Redis (the Celery
workers), with the same interface. Both count, per key, what the metrics show (`stats`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import redis

from core.errors import TinyTransientError
from core.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Settings' default margin: a limiter built by hand paces as one built from settings.
DEFAULT_MARGIN = Settings.tiny_limit_margin


def paced_interval_us(calls_per_minute: int, margin: float) -> int:
    """The interval (µs) that keeps an account `margin` under `calls_per_minute`."""
    return round(60_000_000 / (calls_per_minute * (1 - margin)))


def parse_limit(value: str | None) -> int | None:
    """A per-minute limit header (`x-limit-api`, `X-RateLimit-Limit`); None if absent or odd."""
    if value is None:
        return None
    try:
        calls = int(value.strip())
    except ValueError:
        return None
    return calls if calls > 0 else None  # 0 is a plan without API access: nothing to pace


@dataclass
class AccountStats:
    """What one account's calls went through: the figures of the per-account metrics."""

    calls: int = 0
    wait_seconds: float = 0.0
    #: Answers that refused a call for the limits, by Tiny code (6: per minute, 11: concurrent).
    refused: Counter[int] = field(default_factory=Counter)
    #: The pace of the last call (calls a minute), None before any.
    pace_per_minute: float | None = None
    #: The limit Tiny last announced for the account, None before any.
    announced_limit: int | None = None


class RateLimiter(Protocol):
    """Blocks until a call for `key` may start; the context spans the call."""

    def slot(self, key: str) -> AbstractContextManager[None]: ...

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        """Tiny announced `key`'s plan limit (v2 `x-limit-api`, v3 `X-RateLimit-Limit`)."""

    def override(self, key: str, calls_per_minute: int | None) -> None:
        """Pace `key` to this limit whatever Tiny announces (None: follow Tiny again)."""

    def refused(self, key: str, code: int) -> None:
        """Tiny refused a call of `key` for its limits (code 6 or 11): counted for metrics."""

    def stats(self, keys: Iterable[str]) -> dict[str, AccountStats]:
        """The figures of each of `keys` that made a call (others are left out)."""
        ...


class NoRateLimiter:
    """A limiter that never waits (benchmarks of code paths other than pacing)."""

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        yield

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        """Nothing to pace."""

    def override(self, key: str, calls_per_minute: int | None) -> None:
        """Nothing to pace."""

    def refused(self, key: str, code: int) -> None:
        """Nothing counted."""

    def stats(self, keys: Iterable[str]) -> dict[str, AccountStats]:
        """Nothing counted."""
        return {}


class LocalRateLimiter:
    """Spaces calls per key by its interval and caps them at `concurrency` at once."""

    def __init__(
        self,
        min_interval_ms: int,
        concurrency: int = 1,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = max(0, min_interval_ms) / 1000.0
        self.concurrency = max(1, concurrency)
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_start: dict[str, float] = {}
        self._announced: dict[str, float] = {}
        self._overrides: dict[str, float] = {}
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._stats: dict[str, AccountStats] = {}

    def interval_of(self, key: str) -> float:
        """The seconds between two calls of `key` now."""
        return self._overrides.get(key, self._announced.get(key, self.interval))

    def _reserve(self, key: str) -> float:
        # Reserve the next free start time; the wait happens outside the lock. The interval
        # is added at reservation, so a limit learnt from the last answer paces this call.
        with self._lock:
            now = self._clock()
            interval = self.interval_of(key)
            last = self._last_start.get(key)
            start = now if last is None else max(now, last + interval)
            self._last_start[key] = start
            stats = self._stats.setdefault(key, AccountStats())
            stats.calls += 1
            stats.pace_per_minute = 60 / interval if interval > 0 else None
            return start - now

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        """Pace `key` `margin` under the limit Tiny announced."""
        with self._lock:
            self._announced[key] = paced_interval_us(calls_per_minute, self.margin) / 1e6
            self._stats.setdefault(key, AccountStats()).announced_limit = calls_per_minute

    def override(self, key: str, calls_per_minute: int | None) -> None:
        """Pace `key` `margin` under this limit whatever Tiny announces (None: follow Tiny)."""
        with self._lock:
            if calls_per_minute is None:
                self._overrides.pop(key, None)
            else:
                self._overrides[key] = paced_interval_us(calls_per_minute, self.margin) / 1e6

    def refused(self, key: str, code: int) -> None:
        """Count a code 6 or 11 answer of `key`."""
        with self._lock:
            self._stats.setdefault(key, AccountStats()).refused[code] += 1

    def stats(self, keys: Iterable[str]) -> dict[str, AccountStats]:
        """Copies of the figures of each of `keys` that made a call."""
        with self._lock:
            return {
                key: AccountStats(
                    calls=s.calls,
                    wait_seconds=s.wait_seconds,
                    refused=Counter(s.refused),
                    pace_per_minute=s.pace_per_minute,
                    announced_limit=s.announced_limit,
                )
                for key in keys
                if (s := self._stats.get(key)) is not None
            }

    def _semaphore(self, key: str) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._semaphores.get(key)
            if sem is None:
                sem = self._semaphores[key] = threading.BoundedSemaphore(self.concurrency)
            return sem

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        sem = self._semaphore(key)
        asked = self._clock()
        with sem:
            wait = self._reserve(key)
            if wait > 0:
                self._sleep(wait)
            waited = self._clock() - asked
            with self._lock:
                self._stats[key].wait_seconds += max(0.0, waited)
            yield


#: How long Redis keeps what an account's answers announced, and its figures, past their use.
PACE_TTL_SECONDS = 24 * 3600
STATS_TTL_SECONDS = 7 * 24 * 3600

# KEYS: the account's last start time (µs), a ZSET of the calls holding a concurrency slot
# scored by when their hold expires (µs, so a killed holder frees its slot), the interval its
# answers announced (µs), and its figures (a hash). ARGV: the default interval µs, the
# concurrency, the holder id, the slot TTL µs, the override interval µs (0: none), the µs the
# caller already waited for a slot, the figures' TTL ms. Returns {wait µs before the call
# may start, or -1 when every slot is taken; 1 when the announced interval is stored, else
# 0}. Redis's own clock (TIME) is the only clock, so hosts whose clocks disagree still space
# their calls correctly. Needs Redis >= 5, whose scripts replicate their effects, so a write
# after TIME is allowed.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  return {-1, 0}
end
local announced = redis.call('GET', KEYS[3])
local interval = tonumber(ARGV[5])
if interval <= 0 then
  interval = tonumber(announced or ARGV[1])
end
local last = redis.call('GET', KEYS[1])
local start = now
if last then
  start = math.max(now, tonumber(last) + interval)
end
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[1], string.format('%.0f', start),
           'PX', math.ceil((start - now + 2 * interval) / 1000) + 60000)
redis.call('ZADD', KEYS[2], string.format('%.0f', start + ttl), ARGV[3])
redis.call('PEXPIRE', KEYS[2], math.ceil((start - now + ttl) / 1000) + 1000)
redis.call('HINCRBY', KEYS[4], 'calls', 1)
redis.call('HINCRBY', KEYS[4], 'wait_us', string.format('%.0f', start - now + tonumber(ARGV[6])))
redis.call('HSET', KEYS[4], 'interval_us', string.format('%.0f', interval))
redis.call('PEXPIRE', KEYS[4], ARGV[7])
if announced then
  return {start - now, 1}
end
return {start - now, 0}
"""


class RedisRateLimiter:
    """`LocalRateLimiter`'s spacing and concurrency cap per key, shared through Redis.

    One atomic script reserves the next start time (`start = max(now, last + interval)`) and
    a concurrency slot; the caller sleeps until its start, makes the call, and frees the
    slot. A slot whose holder died expires after `slot_ttl_seconds`, which must outlast the
    longest call. The interval an account's answers announced is stored beside its start
    time, so every process paces it alike; it is written only when it changes (or when the
    script found it gone, after a day unused or a Redis restart), not on every call.
    """

    def __init__(
        self,
        client: redis.Redis,
        min_interval_ms: int,
        concurrency: int = 1,
        *,
        margin: float = DEFAULT_MARGIN,
        prefix: str = "tinysync:ratelimit",
        slot_ttl_seconds: float = 120.0,
        outage_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.interval_us = max(0, min_interval_ms) * 1000
        self.concurrency = max(1, concurrency)
        self.margin = margin
        self.prefix = prefix
        self.slot_ttl_us = int(slot_ttl_seconds * 1_000_000)
        self.outage_seconds = outage_seconds
        # A full semaphore is polled: often enough to reuse a freed slot before the next
        # start time comes up, seldom enough not to load Redis while waiting whole seconds.
        self.poll_seconds = min(max(self.interval_us / 4_000_000, 0.001), 0.05)
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)
        # What this process last stored as each key's announced interval, and its overrides.
        self._stored: dict[str, int] = {}
        self._overrides: dict[str, int] = {}

    @classmethod
    def from_url(
        cls, url: str, min_interval_ms: int, concurrency: int = 1, **kwargs: Any
    ) -> RedisRateLimiter:
        """A limiter on the Redis at `url` (e.g. the Celery broker)."""
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, min_interval_ms, concurrency, **kwargs)

    def keys(self, key: str) -> tuple[str, str, str, str]:
        """The Redis keys of `key`'s last start, slot holders, announced interval, figures."""
        base = f"{self.prefix}:{{{key}}}"  # one hash slot per account on a Redis Cluster
        return f"{base}:last", f"{base}:slots", f"{base}:pace", f"{base}:stats"

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        keys = self.keys(key)
        holder = uuid.uuid4().hex
        asked = time.monotonic()
        override = self._overrides.get(key, 0)
        stats_ttl_ms = STATS_TTL_SECONDS * 1000

        def acquire() -> list[int]:
            polled_us = int((time.monotonic() - asked) * 1_000_000)
            args: list[str | int] = [
                self.interval_us,
                self.concurrency,
                holder,
                self.slot_ttl_us,
                override,
                polled_us,
                stats_ttl_ms,
            ]
            return [int(v) for v in self._acquire(keys=keys, args=args)]

        while (answer := self._call(acquire))[0] < 0:
            self._sleep(self.poll_seconds)
        wait_us, stored = answer
        if not stored:
            self._stored.pop(key, None)  # gone from Redis: the next announcement stores it
        if wait_us > 0:
            self._sleep(wait_us / 1_000_000)
        try:
            yield
        finally:
            self._free(keys[1], holder)

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        """Store `key`'s interval `margin` under the limit Tiny announced, if it changed."""
        interval_us = paced_interval_us(calls_per_minute, self.margin)
        if self._stored.get(key) == interval_us:
            return
        _, _, pace_key, stats_key = self.keys(key)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.set(pace_key, interval_us, ex=PACE_TTL_SECONDS)
                pipe.hset(stats_key, "limit", calls_per_minute)
                pipe.expire(stats_key, STATS_TTL_SECONDS)
                pipe.execute()
        except redis.RedisError as exc:
            # The call went through; the next answer announces the limit again.
            log.warning("could not store a Tiny account's announced limit: %s", exc)
            return
        self._stored[key] = interval_us

    def override(self, key: str, calls_per_minute: int | None) -> None:
        """Pace `key` `margin` under this limit in this process's calls (None: follow Tiny)."""
        if calls_per_minute is None:
            self._overrides.pop(key, None)
        else:
            self._overrides[key] = paced_interval_us(calls_per_minute, self.margin)

    def refused(self, key: str, code: int) -> None:
        """Count a code 6 or 11 answer of `key` in its figures."""
        stats_key = self.keys(key)[3]
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hincrby(stats_key, f"code_{code}", 1)
                pipe.expire(stats_key, STATS_TTL_SECONDS)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not count a refused Tiny call in the metrics: %s", exc)

    def stats(self, keys: Iterable[str]) -> dict[str, AccountStats]:
        """The figures of each of `keys` that made a call, every process's calls summed."""
        wanted = list(keys)
        with self.client.pipeline(transaction=False) as pipe:
            for key in wanted:
                pipe.hgetall(self.keys(key)[3])
            hashes = pipe.execute()
        found = {}
        for key, raw in zip(wanted, hashes, strict=True):
            values = {_text(k): int(v) for k, v in raw.items()}
            if not values.get("calls"):
                continue
            interval_us = values.get("interval_us", 0)
            found[key] = AccountStats(
                calls=values["calls"],
                wait_seconds=values.get("wait_us", 0) / 1e6,
                refused=Counter(
                    {int(k[5:]): v for k, v in values.items() if k.startswith("code_")}
                ),
                pace_per_minute=60e6 / interval_us if interval_us > 0 else None,
                announced_limit=values.get("limit"),
            )
        return found

    def _free(self, slots_key: str, holder: str) -> None:
        try:
            self.client.zrem(slots_key, holder)
        except redis.RedisError as exc:
            # The call itself went through; its slot expires on its own after the TTL.
            log.warning("could not free a rate-limit slot (it expires by itself): %s", exc)

    def _call(self, operation: Callable[[], T]) -> T:
        """Run a Redis operation, riding out a short outage (a restart) with back-off."""
        deadline = time.monotonic() + self.outage_seconds
        delay = 0.05
        while True:
            try:
                return operation()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() + delay > deadline:
                    raise TinyTransientError(
                        f"the Redis that paces Tiny calls is unreachable: {exc}"
                    ) from exc
                log.warning("rate-limit Redis unreachable, retrying in %.2fs: %s", delay, exc)
                self._sleep(delay)
                delay = min(delay * 2, 1.0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
