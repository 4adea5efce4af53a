"""A module task's time limit without signals, for the thread pool `tinysync worker` runs.

Celery enforces `task_soft_time_limit` with a signal sent to a prefork pool process; its
thread pool cannot interrupt a thread, so it enforces no limit at all. tinysync keeps the
protection cooperatively:

- `run_module` works in slices (SYNC_TASK_SLICE_SECONDS) and checks between steps;
- every Tiny call a module task makes is bounded by what is left of the task's soft time
  limit (SYNC_MODULE_SOFT_TIME_LIMIT_SECONDS): `DeadlineTransport` shortens the call's HTTP
  timeouts to it and raises `SoftTimeLimitExceeded` when it passes, which fails the module
  exactly as Celery's own limit does inside a page (the module is recorded as failed with
  that name, and the chain goes on);
- a thread stuck elsewhere (a database call that never returns) stops heart-beating the run's
  lease: the reaper sends the module again after SYNC_LEASE_SECONDS, another thread resumes it
  from its checkpoint, and the stuck thread's next commit is refused by the lease.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx
from celery.exceptions import SoftTimeLimitExceeded

from core.errors import TimeLimitPassed

#: When the module task running in this thread must stop (time.monotonic()), if it must.
_DEADLINE: ContextVar[float | None] = ContextVar("tinysync_task_deadline", default=None)
#: A socket timeout may fire a hair before the monotonic clock reaches the deadline.
_TIMER_SLACK_SECONDS = 0.05


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Bound the Tiny calls made inside the block to `seconds` from now (None: unbounded)."""
    token = _DEADLINE.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def seconds_left() -> float | None:
    """What is left of this thread's time limit; None outside `time_limit`."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


class ThreadTimeLimitPassed(TimeLimitPassed, SoftTimeLimitExceeded):
    """The thread pool's soft time limit: Celery's exception, with core's sentence."""


def _exceeded(request: httpx.Request) -> SoftTimeLimitExceeded:
    return ThreadTimeLimitPassed(
        "o módulo passou do tempo limite (SYNC_MODULE_SOFT_TIME_LIMIT_SECONDS) esperando a "
        f"resposta do Tiny a {request.url.path.rsplit('/', 1)[-1]}"
    )


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport whose calls end by the time limit of the task making them."""

    def __init__(self, inner: httpx.BaseTransport):
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`, its timeouts cut to the task's time left; past it, the limit."""
        left = seconds_left()
        if left is None:
            return self._inner.handle_request(request)
        if left <= 0:
            raise _exceeded(request)
        timeouts = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {
            phase: left if value is None else min(value, left) for phase, value in timeouts.items()
        } or {phase: left for phase in ("connect", "read", "write", "pool")}
        try:
            return self._inner.handle_request(request)
        except httpx.TimeoutException as exc:
            if (seconds_left() or 0.0) <= _TIMER_SLACK_SECONDS:
                raise _exceeded(request) from exc
            raise

    def close(self) -> None:
        """Close the transport underneath."""
        self._inner.close()
