"""Per-account pacing of Tiny calls: a minimum interval between calls and a concurrency cap.

Tiny counts calls per account, so the key is the account (a hash of its token), not the
company. `LocalRateLimiter` holds within one process; `RedisRateLimiter` holds across every
process and machine that shares one Redis (the Celery workers), with the same interface.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

import redis

from core.errors import TinyTransientError

log = logging.getLogger(__name__)
T = TypeVar("T")


class RateLimiter(Protocol):
    """Blocks until a call for `key` may start; the context spans the call."""

    def slot(self, key: str) -> AbstractContextManager[None]: ...

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        """Tiny announced `key`'s plan limit (v2 `x-limit-api`, v3 `X-RateLimit-Limit`)."""


class NoRateLimiter:
    """A limiter that never waits (benchmarks of code paths other than pacing)."""

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        yield

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        """Nothing to pace."""


class LocalRateLimiter:
    """Spaces calls per key by `min_interval_ms` and caps them at `concurrency` at once."""

    def __init__(
        self,
        min_interval_ms: int,
        concurrency: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = max(0, min_interval_ms) / 1000.0
        self.concurrency = max(1, concurrency)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start: dict[str, float] = {}
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}

    def _reserve(self, key: str) -> float:
        # Reserve the next free start time; the wait happens outside the lock.
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start.get(key, now))
            self._next_start[key] = start + self.interval
            return start - now

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        """Not used yet: every key keeps `min_interval_ms` (per-account pacing is issue 11)."""

    def _semaphore(self, key: str) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._semaphores.get(key)
            if sem is None:
                sem = self._semaphores[key] = threading.BoundedSemaphore(self.concurrency)
            return sem

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        sem = self._semaphore(key)
        with sem:
            wait = self._reserve(key)
            if wait > 0:
                self._sleep(wait)
            yield


# KEYS[1]: the account's next free start time (µs); KEYS[2]: a ZSET of the calls holding a
# concurrency slot, scored by when their hold expires (µs), so a killed holder frees its slot.
# ARGV: interval µs, concurrency, holder id, slot TTL µs. Returns the wait in µs before the
# call may start, or -1 when every slot is taken. Redis's own clock (TIME) is the only clock,
# so hosts whose clocks disagree still space their calls correctly. Needs Redis >= 5, whose
# scripts replicate their effects, so a write after TIME is allowed.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  return -1
end
local interval = tonumber(ARGV[1])
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or now))
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[1], string.format('%.0f', start + interval),
           'PX', math.ceil((start - now + interval) / 1000) + 1000)
redis.call('ZADD', KEYS[2], string.format('%.0f', start + ttl), ARGV[3])
redis.call('PEXPIRE', KEYS[2], math.ceil((start - now + ttl) / 1000) + 1000)
return start - now
"""


class RedisRateLimiter:
    """`LocalRateLimiter`'s spacing and concurrency cap per key, shared through Redis.

    One atomic script reserves the next start time (`start = max(now, next)`,
    `next = start + interval`) and a concurrency slot; the caller sleeps until its start,
    makes the call, and frees the slot. A slot whose holder died expires after
    `slot_ttl_seconds`, which must outlast the longest call.
    """

    def __init__(
        self,
        client: redis.Redis,
        min_interval_ms: int,
        concurrency: int = 1,
        *,
        prefix: str = "tinysync:ratelimit",
        slot_ttl_seconds: float = 120.0,
        outage_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.interval_us = max(0, min_interval_ms) * 1000
        self.concurrency = max(1, concurrency)
        self.prefix = prefix
        self.slot_ttl_us = int(slot_ttl_seconds * 1_000_000)
        self.outage_seconds = outage_seconds
        # A full semaphore is polled: often enough to reuse a freed slot before the next
        # start time comes up, seldom enough not to load Redis while waiting whole seconds.
        self.poll_seconds = min(max(self.interval_us / 4_000_000, 0.001), 0.05)
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)

    @classmethod
    def from_url(
        cls, url: str, min_interval_ms: int, concurrency: int = 1, **kwargs: Any
    ) -> RedisRateLimiter:
        """A limiter on the Redis at `url` (e.g. the Celery broker)."""
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, min_interval_ms, concurrency, **kwargs)

    def keys(self, key: str) -> tuple[str, str]:
        """The Redis keys of `key`'s next start time and of its slot holders."""
        base = f"{self.prefix}:{{{key}}}"  # one hash slot per account on a Redis Cluster
        return f"{base}:next", f"{base}:slots"

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        keys = self.keys(key)
        holder = uuid.uuid4().hex
        args: list[str | int] = [self.interval_us, self.concurrency, holder, self.slot_ttl_us]
        while (wait_us := int(self._call(lambda: self._acquire(keys=keys, args=args)))) < 0:
            self._sleep(self.poll_seconds)
        if wait_us > 0:
            self._sleep(wait_us / 1_000_000)
        try:
            yield
        finally:
            self._free(keys[1], holder)

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        """Not used yet: every key keeps `min_interval_ms` (per-account pacing is issue 11)."""

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
