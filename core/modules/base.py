"""What a sync module sees while it runs: its checkpoint, the Tiny client, and `commit`.

A module lists pages and writes them; after every page it calls `ModuleContext.commit`, which
writes the data, the module's counters and its checkpoint in one transaction, through the
lease's per-page heartbeat (`core.runs.lease.save`: conditional on the run still being RUNNING
and this executor still holding the lease). Before every Tiny call it calls `check`, which is
how a cancel takes effect before the next call.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import TinyError
from core.models import SyncWatermark, utcnow
from core.modules.source import Source, V2Source
from core.runs import lease
from core.runs.inputs import Mode
from core.runs.lease import StopReason
from core.runs.model import ModuleProgress, Progress, Verification
from core.settings import Settings
from core.tiny import Page, TinyClient
from core.wording import pause_line, retry_line

log = logging.getLogger(__name__)


class StepInterrupted(Exception):
    """The executor must stop now: the run was canceled, or another executor took it over."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BackOffLater(StepInterrupted):
    """A retry must wait past the step's budget: pause now and resume after `wait_seconds`."""

    def __init__(self, wait_seconds: float):
        super().__init__("back-off")
        self.wait_seconds = wait_seconds


class SyncModule(Protocol):
    """A sync module: runs from its checkpoint; True when finished, False when paused."""

    @property
    def key(self) -> str:
        """The module's key in the progress document, e.g. `vw_vendas`."""
        ...

    def run(self, ctx: ModuleContext) -> bool: ...


@dataclass
class ModuleContext:
    """One module's execution inside one step."""

    run_id: str
    company_id: str
    mode: str
    window_start: date
    window_end: date
    token: str
    account: str
    module: str
    settings: Settings
    client: TinyClient
    session_factory: sessionmaker[Session]
    owner: str
    progress: Progress
    checkpoints: dict[str, Any]
    deadline: float
    log_line: Callable[..., None]
    calls: int = 0
    retries: int = 0
    pending_calls: int = field(default=0, repr=False)
    #: Tiny's clock at its latest listing answer in this step (the HTTP `Date`).
    tiny_clock: datetime | None = field(default=None, repr=False)
    #: Set by `paging.paged` while it reads a listing: the checkpoint key under which the
    #: pass's counts are tallied, and whether they also count in the entry now (the first
    #: pass, so progress shows live). A confirmed pass's tally replaces the first pass's.
    tally_key: str | None = field(default=None, repr=False)
    count_live: bool = field(default=True, repr=False)
    #: Where Tiny is read from (v2 or v3); by default the v2 client with the token.
    source: Source | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = V2Source(self.client, self.token, self.account)

    @property
    def tiny(self) -> Source:
        """The company's Tiny account (`source`)."""
        assert self.source is not None
        return self.source

    # -- state -------------------------------------------------------------------------
    @property
    def entry(self) -> ModuleProgress:
        """This module's progress entry."""
        return self.progress[self.module]

    @property
    def checkpoint(self) -> dict[str, Any]:
        """This module's checkpoint (mutable; saved by `commit`)."""
        cp: dict[str, Any] = self.checkpoints.setdefault(self.module, {})
        return cp

    @property
    def incremental(self) -> bool:
        return self.mode == Mode.INCREMENTAL

    def out_of_time(self) -> bool:
        """Whether the step's budget is spent (the module should pause after its commit)."""
        return time.monotonic() >= self.deadline

    # -- guards --------------------------------------------------------------------------
    def check(self) -> None:
        """Raise StepInterrupted if the run was canceled or the lease was taken over."""
        with self.session_factory() as session:
            reason = lease.standing(session, self.run_id, self.owner)
        if reason is not None:
            raise StepInterrupted(reason)

    # -- Tiny calls ----------------------------------------------------------------------
    def on_retry(self, service: str, attempt: int, exc: TinyError, wait: float) -> None:
        """Log a retry and keep the lease alive over the back-off.

        A wait that would outlast the step (Tiny's minute window after code 6) is not slept
        here: the step pauses, and the next step after the wait retries the call.
        """
        self.retries += 1
        self.pending_calls += 1
        if time.monotonic() + wait > self.deadline:
            self.log_line(
                "warn",
                pause_line(service, exc, wait),
                module=self.module,
                metadata={"service": service, "attempt": attempt, "code": exc.code},
            )
            raise BackOffLater(wait)
        self.log_line(
            "warn",
            retry_line(service, exc, attempt, wait),
            module=self.module,
            metadata={"service": service, "attempt": attempt, "code": exc.code},
        )
        self._extend_lease(extra_seconds=wait)

    def list_page(
        self, service: str, list_key: str, item_key: str, params: dict[str, Any], page: int
    ) -> Page:
        """Check for cancel, then fetch one listing page."""
        self.check()
        self.pending_calls += 1
        answer = self.tiny.list_page(
            service, list_key, item_key, params, page, on_retry=self.on_retry
        )
        self.tiny_clock = answer.served_at or self.tiny_clock
        return answer

    def get_record(self, service: str, record_key: str, record_id: int) -> dict[str, Any] | None:
        """Check for cancel, then fetch one record (None when Tiny has no such record)."""
        self.check()
        self.pending_calls += 1
        return self.tiny.get_record(service, record_key, record_id, on_retry=self.on_retry)

    def get_records(
        self, service: str, record_key: str, ids: list[int]
    ) -> tuple[dict[int, dict[str, Any] | None], BackOffLater | None]:
        """Fetch records one by one; a back-off ends the batch early with what was fetched.

        The caller commits what came back before raising the back-off, so a pause never
        throws away calls already made (which, under a tight limit, would never progress).
        """
        fetched: dict[int, dict[str, Any] | None] = {}
        for record_id in ids:
            try:
                fetched[record_id] = self.get_record(service, record_key, record_id)
            except BackOffLater as pause:
                return fetched, pause
        return fetched, None

    # -- persistence ---------------------------------------------------------------------
    def commit(
        self,
        write: Callable[[Session], object] | None = None,
        *,
        processed: int = 0,
        skipped: int = 0,
        errors: list[str] | None = None,
        counters: dict[str, int] | None = None,
        verified: Verification | None = None,
    ) -> None:
        """Write data, counters, verification and checkpoint atomically, or StepInterrupted."""
        before = self.entry.copy()
        self.entry.count("calls", self.pending_calls)
        targets = [self.entry] if self.count_live else []
        tally = None
        if self.tally_key is not None:
            tally = ModuleProgress.from_json(self.checkpoint.get(self.tally_key))
            targets.append(tally)
        for entry in targets:
            entry.processed += processed
            entry.skipped += skipped
            for name, value in (counters or {}).items():
                entry.count(name, value)
            if errors:
                entry.add_errors(errors)
            if verified is not None:
                entry.verified.add(verified)
        if tally is not None and self.tally_key is not None:
            self.checkpoint[self.tally_key] = tally.to_json()
        with self.session_factory() as session:
            if write is not None:
                write(session)
            saved = lease.save(
                session,
                self.run_id,
                self.owner,
                lease_seconds=self.settings.sync_lease_seconds,
                progress=self.progress.to_json(),
                checkpoints=copy.deepcopy(self.checkpoints),
                module=self.module,
                calls=self.pending_calls,
            )
            if not saved:
                session.rollback()
                self.progress.modules[self.module] = before
                reason = lease.standing(session, self.run_id, self.owner)
                raise StepInterrupted(reason or StopReason.LEASE_LOST)
            session.commit()
        self.calls += self.pending_calls
        self.pending_calls = 0

    def _extend_lease(self, extra_seconds: float = 0.0) -> None:
        with self.session_factory() as session:
            lease.heartbeat(
                session,
                self.run_id,
                self.owner,
                self.settings.sync_lease_seconds + extra_seconds,
            )
            session.commit()

    # -- watermarks ----------------------------------------------------------------------
    def watermark(self) -> datetime | None:
        """Until when this company's module was last fully synced in incremental mode."""
        with self.session_factory() as session:
            return session.scalar(
                select(SyncWatermark.syncedUntil).where(
                    SyncWatermark.companyId == self.company_id,
                    SyncWatermark.module == self.module,
                )
            )

    def tiny_now(self) -> datetime:
        """Tiny's clock: the `Date` of its latest listing answer in this step, else ours."""
        return self.tiny_clock or utcnow()

    def anchor_watermark(self) -> None:
        """Fix, once per listing, the watermark it sets when the module finishes.

        Call it when writing a listing's pages: the first call takes Tiny's clock at the
        first answer served, so a change Tiny stamps after that moment is at or after the
        watermark, whatever our own clock says; it is kept in the checkpoint (a resumed
        module keeps it). The next incremental listing asks for changes since the
        watermark minus an overlap.
        """
        self.checkpoint.setdefault("watermark", self.tiny_now().isoformat())

    def fresh_watermark(self) -> datetime | None:
        """The watermark if incremental and recent enough for Tiny's change filters."""
        if not self.incremental:
            return None
        mark = self.watermark()
        if mark is None:
            return None
        oldest = utcnow() - timedelta(days=self.settings.sync_incremental_days)
        return mark if mark >= oldest else None


def set_watermark(
    session: Session, company_id: str, module: str, until: datetime, run_id: str
) -> None:
    """Record that `module` is in sync for the company up to `until`."""
    mark = session.get(SyncWatermark, (company_id, module))
    if mark is None:
        session.add(
            SyncWatermark(companyId=company_id, module=module, syncedUntil=until, runId=run_id)
        )
    else:
        mark.syncedUntil = until
        mark.runId = run_id
