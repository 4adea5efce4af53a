"""tinysync's exceptions, one tree; callers decide retry-or-fail by type, never by message.

    SyncError
    ├── TinyError                      anything the Tiny API (or the way to it) did wrong
    │   ├── TinyTransientError         worth retrying: rate limit (6), concurrency (11),
    │   │   │                          unexpected (35), maintenance (99), 5xx, timeouts, bad JSON
    │   │   └── TinyRateLimitError     codes 6 and 11, with the wait the client should honour
    │   └── TinyPermanentError         retrying will not help: token (1, 2), blocked (5, 8),
    │       │                          missing parameter (10), anything unknown
    │       ├── TinyAuthError          the account's token is missing or invalid
    │       │   └── TinyReconnectNeeded    v3: the OAuth pair no longer works ("precisa
    │       │                              reconectar"); only a person authorising again helps
    │       └── TinyQueryTooLarge      too many records for one query (21): narrow the window
    ├── BadValue                       a value in a Tiny record that cannot be stored (NaN,
    │                                  an impossible date, an ambiguous amount…): the record
    │                                  is set aside, the rest of its page is stored
    ├── ValidationError                input a person gave is wrong (bad month, unknown mode…)
    ├── NotFoundError                  unknown run or company
    └── RunStateError                  a transition the run's state does not allow
        └── ActiveRunExists            the company already has a QUEUED/RUNNING run

Codes 20 (no records), 23 (no such page) and 32 (record not found) are not errors: the client
turns them into an empty page, the end of a listing, and a skipped record.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error tinysync raises on purpose."""


class TinyError(SyncError):
    """The Tiny API answered with an error or could not be reached."""

    def __init__(self, message: str, *, code: int | None = None, service: str | None = None):
        super().__init__(message)
        self.code = code
        self.service = service


class TinyTransientError(TinyError):
    """A Tiny failure that a later attempt may not have."""


class TinyRateLimitError(TinyTransientError):
    """Tiny refused the call for the account's rate or concurrency limit."""

    def __init__(self, message: str, *, wait_seconds: float, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.wait_seconds = wait_seconds


class TinyPermanentError(TinyError):
    """A Tiny failure that retrying will not fix."""


class TinyAuthError(TinyPermanentError):
    """The Tiny token is missing or invalid."""


class TinyReconnectNeeded(TinyAuthError):
    """A v3 company's refresh token lapsed or was refused: a person must connect it again."""


#: What a person reads when a v3 company's authorisation is gone (runs, banner, notification).
RECONNECT_SENTENCE = "a empresa precisa reconectar ao Tiny: use o botão Conectar ao Tiny"


class TinyQueryTooLarge(TinyPermanentError):
    """Tiny refused a listing for matching too many records (code 21)."""


class BadValue(SyncError):
    """A Tiny value that cannot be stored; `reason` is Portuguese, for the people who read it."""

    def __init__(self, field: str, value: object, reason: str):
        super().__init__(f"{field} {shown(value)} ({reason})")
        self.field = field
        self.value = value
        self.reason = reason


class TimeLimitPassed(SyncError):
    """A module passed its time limit (the worker's SYNC_MODULE_SOFT_TIME_LIMIT_SECONDS): it
    fails with this sentence and resumes from its checkpoint when the run is resumed."""


class ValidationError(SyncError):
    """Input given by a person (or a client) is not acceptable."""


class NotFoundError(SyncError):
    """A run or company that does not exist."""


class RunStateError(SyncError):
    """The run's current status does not allow what was asked."""

    def __init__(self, message: str, *, run_id: str | None = None, status: str | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.status = status


class ActiveRunExists(RunStateError):
    """The company already has a QUEUED or RUNNING run; `run_id` names it."""


#: How long a stored module error may be; the full detail goes to the Python log.
SHORT_ERROR_CHARS = 300
#: How much of an odd value a message shows.
SHOWN_VALUE_CHARS = 40


def shown(value: object, limit: int = SHOWN_VALUE_CHARS) -> str:
    """`repr(value)` cut to `limit` characters, so NUL or a lone surrogate is visible."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_error(error: BaseException | str) -> str:
    """One short line for progress and `errorMessage`: the first line, at most 300 chars.

    A database error's text carries its SQL and parameters (kilobytes) on the lines after
    the first; only the first line says what went wrong.
    """
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    lines = text.strip().splitlines()
    first = lines[0] if lines else text
    return first if len(first) <= SHORT_ERROR_CHARS else first[: SHORT_ERROR_CHARS - 1] + "…"
