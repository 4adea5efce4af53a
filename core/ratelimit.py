"""Per-account pacing of Tiny calls: a minimum interval between calls and a concurrency cap.

Tiny counts calls per account, so the key is the account (a hash of its token), not the
company. `LocalRateLimiter` holds within one process; the worker package provides a Redis
implementation with the same interface that holds across processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class RateLimiter(Protocol):
    """Blocks until a call for `key` may start; the context spans the call."""

    def slot(self, key: str) -> AbstractContextManager[None]: ...


class NoRateLimiter:
    """A limiter that never waits (benchmarks of code paths other than pacing)."""

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        yield


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
