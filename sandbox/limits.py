"""Per-token rate and concurrency limits, and the call counters tests assert on."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counters:
    """Calls seen for a token (or all tokens); Counter fields answer 0 for unseen keys."""

    calls: int = 0
    ok: int = 0
    per_service: Counter[str] = field(default_factory=Counter)
    by_code: Counter[int] = field(default_factory=Counter)
    #: HTTP statuses of v3 answers other than 200.
    by_status: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    rate_limit_violations: int = 0
    concurrency_violations: int = 0
    max_in_flight: int = 0

    @property
    def by_service(self) -> Counter[str]:
        """Alias of per_service."""
        return self.per_service

    def add(self, other: Counters) -> None:
        """Fold another token's counters into these (max_in_flight takes the max)."""
        self.calls += other.calls
        self.ok += other.ok
        self.per_service.update(other.per_service)
        self.by_code.update(other.by_code)
        self.by_status.update(other.by_status)
        self.faults.update(other.faults)
        self.rate_limit_violations += other.rate_limit_violations
        self.concurrency_violations += other.concurrency_violations
        self.max_in_flight = max(self.max_in_flight, other.max_in_flight)

    def copy(self) -> Counters:
        """An independent snapshot."""
        snapshot = Counters()
        snapshot.add(self)
        return snapshot

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (code keys become strings, as JSON requires)."""
        return {
            "calls": self.calls,
            "ok": self.ok,
            "per_service": dict(self.per_service),
            "by_code": {str(k): v for k, v in self.by_code.items()},
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "faults": dict(self.faults),
            "rate_limit_violations": self.rate_limit_violations,
            "concurrency_violations": self.concurrency_violations,
            "max_in_flight": self.max_in_flight,
        }


class CounterStore:
    """Lock-protected counters per token; every update is a few integer operations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, Counters] = {}
        self._sequence = 0

    def _get(self, token: str) -> Counters:
        counters = self._by_token.get(token)
        if counters is None:
            counters = self._by_token[token] = Counters()
        return counters

    def call(self, token: str, service: str) -> int:
        """Count a call; returns its global sequence number."""
        with self._lock:
            counters = self._get(token)
            counters.calls += 1
            counters.per_service[service] += 1
            self._sequence += 1
            return self._sequence

    def answer(self, token: str, code: int | None) -> None:
        """Count an answer: OK (None) or a codigo_erro."""
        with self._lock:
            counters = self._get(token)
            if code is None:
                counters.ok += 1
            else:
                counters.by_code[code] += 1
                if code == 6:
                    counters.rate_limit_violations += 1
                elif code == 11:
                    counters.concurrency_violations += 1

    def status(self, token: str, status: int) -> None:
        """Count a v3 answer by its HTTP status (429 is a rate-limit violation)."""
        with self._lock:
            counters = self._get(token)
            if status == 200:
                counters.ok += 1
            else:
                counters.by_status[status] += 1
                if status == 429:
                    counters.rate_limit_violations += 1

    def fault(self, token: str, kind: str) -> None:
        """Count an injected fault."""
        with self._lock:
            self._get(token).faults[kind] += 1

    def in_flight(self, token: str, now_in_flight: int) -> None:
        """Remember the peak of simultaneous requests."""
        with self._lock:
            counters = self._get(token)
            counters.max_in_flight = max(counters.max_in_flight, now_in_flight)

    def snapshot(self, token: str | None = None) -> Counters:
        """Counters of one token, or summed over all tokens when token is None."""
        with self._lock:
            if token is not None:
                return self._get(token).copy() if token in self._by_token else Counters()
            total = Counters()
            for counters in self._by_token.values():
                total.add(counters)
            return total

    def reset(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self._by_token.clear()


class RateLimiter:
    """Sliding window per token: at most `calls` accepted calls in the last `window` seconds.

    Rejected calls (code 6) do not use up the window, so a client that waits for the oldest
    accepted call to age out gets through; they are still counted as violations.
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def acquire(self, token: str, calls: int, window: float) -> bool:
        """Record a call and return True, or return False when over the limit."""
        now = self._monotonic()
        with self._lock:
            recent = self._calls.setdefault(token, deque())
            while recent and recent[0] <= now - window:
                recent.popleft()
            if len(recent) >= calls:
                return False
            recent.append(now)
            return True

    def reset(self, token: str | None = None) -> None:
        """Clear the window of one token, or of all."""
        with self._lock:
            if token is None:
                self._calls.clear()
            else:
                self._calls.pop(token, None)


class WindowLimiter:
    """Fixed windows per account, as v3's X-RateLimit-* headers describe them.

    A window opens with the first call after the last one closed and lasts `window` seconds;
    at most `calls` are accepted in it. Rejected calls (429) do not use up the budget.
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # token -> (window end, accepted)

    def acquire(self, token: str, calls: int, window: float) -> tuple[bool, int, int]:
        """(accepted, calls remaining, whole seconds until the window resets, at least 1)."""
        now = self._monotonic()
        with self._lock:
            end, used = self._windows.get(token, (now, 0))
            if now >= end:
                end, used = now + window, 0
            accepted = used < calls
            if accepted:
                used += 1
            self._windows[token] = (end, used)
        return accepted, max(calls - used, 0), max(1, math.ceil(end - now))

    def reset(self, token: str | None = None) -> None:
        """Close the window of one token, or of all."""
        with self._lock:
            if token is None:
                self._windows.clear()
            else:
                self._windows.pop(token, None)


class InFlight:
    """Requests being processed per token, for Tiny's concurrency limit (code 11)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}

    def enter(self, token: str) -> int:
        """Start a request; returns how many are now in flight, this one included."""
        with self._lock:
            self._count[token] = self._count.get(token, 0) + 1
            return self._count[token]

    def leave(self, token: str) -> None:
        """Finish a request."""
        with self._lock:
            self._count[token] -= 1
