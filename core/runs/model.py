"""A run's vocabulary: its statuses, its modules' statuses, and the progress document.

This is the only module that knows the shape of `SyncRun.progressJson`:

    {"modules": {key: {"status", "processed", "skipped", "errors", "calls", ...}}}

Everything else reads and writes it through `Progress.from_json` / `Progress.to_json`. It
imports nothing from the rest of tinysync, so the models, the lease and the sync modules can
all depend on it without a cycle.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: How many error messages a module keeps (the newest).
MAX_ERRORS_KEPT = 20


class RunStatus(enum.StrEnum):
    """Where a run stands; stored by value in `SyncRun.status`."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def is_final(self) -> bool:
        """Whether nothing more will happen to the run (short of a resume)."""
        return self in (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELED)

    @property
    def is_active(self) -> bool:
        """Whether the run still holds its company's one active slot."""
        return self in ACTIVE_STATUSES


#: The statuses of a run that blocks another run of its company (the partial unique index).
ACTIVE_STATUSES: tuple[RunStatus, ...] = (RunStatus.QUEUED, RunStatus.RUNNING)


class ModuleStatus(enum.StrEnum):
    """Where one module of a run stands; stored by value in the progress document."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_unfinished(self) -> bool:
        """Whether the module still has work (never started, or stopped mid-way)."""
        return self in (ModuleStatus.PENDING, ModuleStatus.RUNNING)


_KNOWN = ("status", "processed", "skipped", "errors", "startedAt", "finishedAt", "verified")
#: How many set-aside records a module names in its verification (the first ones).
SET_ASIDE_NAMED = 5


@dataclass
class Verification:
    """What a module confirmed against Tiny: the run's own account of how true the copy is.

    `listed`: records Tiny served; `stored`: rows written; `corrected`: stored rows found
    changed on a re-read, by kind (`paid`, `canceled`, `deleted`, `changed`...); `set_aside`:
    records that could not be stored, the first few named in `set_aside_named` ("pedido 123,
    valor 'NaN'"); `unconfirmed`: a sentence when something could not be confirmed (e.g. a
    listing that kept moving while read).
    """

    listed: int = 0
    stored: int = 0
    corrected: dict[str, int] = field(default_factory=dict)
    set_aside: int = 0
    set_aside_named: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Verification:
        """A verification from its JSON (missing keys read as zero)."""
        data = data or {}
        return cls(
            listed=int(data.get("listed") or 0),
            stored=int(data.get("stored") or 0),
            corrected={str(k): int(v) for k, v in (data.get("corrected") or {}).items()},
            set_aside=int(data.get("setAside") or 0),
            set_aside_named=[str(x) for x in data.get("setAsideNamed") or []],
            unconfirmed=[str(x) for x in data.get("unconfirmed") or []],
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON under a module's `verified` key."""
        return {
            "listed": self.listed,
            "stored": self.stored,
            "corrected": dict(self.corrected),
            "setAside": self.set_aside,
            "setAsideNamed": list(self.set_aside_named),
            "unconfirmed": list(self.unconfirmed),
        }

    def __bool__(self) -> bool:
        """Whether anything was verified (an untouched module keeps the seed's shape)."""
        return bool(
            self.listed or self.stored or self.corrected or self.set_aside or self.unconfirmed
        )

    @property
    def corrected_total(self) -> int:
        """Stored rows corrected, all kinds together."""
        return sum(self.corrected.values())

    def add(self, other: Verification) -> None:
        """Fold in what one page or batch verified."""
        self.listed += other.listed
        self.stored += other.stored
        for kind, count in other.corrected.items():
            self.corrected[kind] = self.corrected.get(kind, 0) + count
        self.set_aside += other.set_aside
        room = SET_ASIDE_NAMED - len(self.set_aside_named)
        if room > 0:
            self.set_aside_named += other.set_aside_named[:room]
        for note in other.unconfirmed:
            if note not in self.unconfirmed:
                self.unconfirmed.append(note)


@dataclass
class ModuleProgress:
    """One module's entry: its status, counts, errors, timestamps and named counters."""

    status: ModuleStatus = ModuleStatus.PENDING
    processed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    #: Named counts beside processed/skipped: `calls` (Tiny calls), `listed`, `enriched`...
    counters: dict[str, int] = field(default_factory=dict)
    #: What the module confirmed against Tiny (see `Verification`).
    verified: Verification = field(default_factory=Verification)
    #: Keys this version does not know, kept as they are.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ModuleProgress:
        """An entry from its JSON (a missing or unknown status reads as pending)."""
        data = data or {}
        try:
            status = ModuleStatus(data.get("status", ModuleStatus.PENDING))
        except ValueError:
            status = ModuleStatus.PENDING
        entry = cls(
            status=status,
            processed=int(data.get("processed") or 0),
            skipped=int(data.get("skipped") or 0),
            errors=[str(e) for e in data.get("errors") or []],
            started_at=data.get("startedAt"),
            finished_at=data.get("finishedAt"),
            verified=Verification.from_json(data.get("verified")),
        )
        for key, value in data.items():
            if key in _KNOWN:
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                entry.counters[key] = value
            else:
                entry.extra[key] = copy.deepcopy(value)
        return entry

    def to_json(self) -> dict[str, Any]:
        """The entry's JSON, as the API, the UI and the seed read it."""
        data: dict[str, Any] = {
            "status": self.status.value,
            "processed": self.processed,
            "skipped": self.skipped,
            "errors": list(self.errors),
            **({"verified": self.verified.to_json()} if self.verified else {}),
            **copy.deepcopy(self.extra),
            **self.counters,
        }
        if self.started_at is not None:
            data["startedAt"] = self.started_at
        if self.finished_at is not None:
            data["finishedAt"] = self.finished_at
        return data

    def count(self, name: str, value: int) -> None:
        """Add `value` to the named counter."""
        self.counters[name] = self.counters.get(name, 0) + value

    def add_errors(self, messages: Iterable[str]) -> None:
        """Append error messages, keeping the newest MAX_ERRORS_KEPT."""
        self.errors = (self.errors + list(messages))[-MAX_ERRORS_KEPT:]

    def copy(self) -> ModuleProgress:
        """A deep copy (to restore after a commit that did not go through)."""
        return copy.deepcopy(self)


@dataclass
class Progress:
    """Every module's entry, keyed by module."""

    modules: dict[str, ModuleProgress] = field(default_factory=dict)
    #: Top-level keys this version does not know, kept as they are.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def initial(cls, keys: Iterable[str]) -> Progress:
        """Every module pending with zero counts, as in the seed's progress JSON."""
        return cls(modules={key: ModuleProgress() for key in keys})

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, keys: Iterable[str] = ()) -> Progress:
        """The progress stored in `progressJson`; modules of `keys` it lacks read as pending.

        Modules come in the order of `keys`, then any others: PostgreSQL's JSONB does not keep
        the order a document was written in.
        """
        data = data or {}
        stored = data.get("modules") or {}
        modules = {key: ModuleProgress.from_json(stored.get(key)) for key in keys}
        for key, entry in stored.items():
            if key not in modules:
                modules[key] = ModuleProgress.from_json(entry)
        extra = {k: copy.deepcopy(v) for k, v in data.items() if k != "modules"}
        return cls(modules=modules, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in `progressJson` (a fresh object: JSON columns compare by value)."""
        return {
            **copy.deepcopy(self.extra),
            "modules": {key: entry.to_json() for key, entry in self.modules.items()},
        }

    def __getitem__(self, key: str) -> ModuleProgress:
        return self.modules.setdefault(key, ModuleProgress())

    def remaining(self, order: Sequence[str]) -> list[str]:
        """The modules of `order` still pending or running, in that order."""
        return [key for key in order if self[key].status.is_unfinished]

    def next_module(self, order: Sequence[str]) -> str | None:
        """The first module of `order` still pending or running."""
        remaining = self.remaining(order)
        return remaining[0] if remaining else None

    @property
    def unfinished(self) -> bool:
        """Whether any module still has work, whatever the run order."""
        return any(entry.status.is_unfinished for entry in self.modules.values())

    @property
    def failed(self) -> list[str]:
        """The modules that failed."""
        return [k for k, e in self.modules.items() if e.status is ModuleStatus.FAILED]

    @property
    def processed(self) -> int:
        """Records processed by all modules together."""
        return sum(entry.processed for entry in self.modules.values())

    @property
    def skipped(self) -> int:
        """Records skipped by all modules together."""
        return sum(entry.skipped for entry in self.modules.values())

    def canceled(self) -> Progress:
        """A copy with every unfinished module marked canceled."""
        result = copy.deepcopy(self)
        for entry in result.modules.values():
            if entry.status.is_unfinished:
                entry.status = ModuleStatus.CANCELED
        return result

    def as_shown(self, status: str) -> Progress:
        """The progress as people see it: a canceled run's unfinished modules canceled."""
        return self.canceled() if status == RunStatus.CANCELED else self


def next_module(progress: dict[str, Any] | Progress | None, order: Sequence[str]) -> str | None:
    """The first module of `order` still pending or running in `progress`."""
    if not isinstance(progress, Progress):
        progress = Progress.from_json(progress)
    return progress.next_module(order)


def remaining_modules(
    progress: dict[str, Any] | Progress | None, order: Sequence[str]
) -> list[str]:
    """The modules of `order` still pending or running in `progress`, in that order."""
    if not isinstance(progress, Progress):
        progress = Progress.from_json(progress)
    return progress.remaining(order)
