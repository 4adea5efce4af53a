"""The two ways a module fetches from Tiny, resumable from its checkpoint: `paged` walks a
listing page by page, `batched` fetches records by id a batch at a time.

Both commit after every page or batch (through the module's `write`, which calls
`ctx.commit`, saving the checkpoint), check for a cancel before every call (through the
context's `list_page`/`get_record`), and stop when the step is out of time, returning False so
the next step continues where this one left off.

Every listing upsert marks its rows with `mark_listed` (`listedAt` now, `deletedAt` cleared),
so "stored rows a complete listing did not serve" is `listedAt IS NULL OR listedAt < since`,
with `since` from `paged`'s `served` windows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select

from core.errors import TinyQueryTooLarge
from core.models import utcnow
from core.modules.base import ModuleContext
from core.runs.model import ModuleProgress, Verification
from core.tiny import Page, walk_pages

ParamsFor = Callable[[date, date], dict[str, Any]]
WritePage = Callable[[list[dict[str, Any]], int], None]
WriteBatch = Callable[[dict[int, dict[str, Any] | None]], None]

#: The checkpoint's `page` once a pass's last page is written: compare it, then go on.
PASS_READ = 0
#: What a module's verification says of a listing still changing after the last pass.
LISTING_KEPT_MOVING = (
    "a listagem mudou durante a leitura; pode faltar algum registro até a próxima execução"
)
#: Checkpoint keys of one listing (the windows left, the pass over windows[0], its counts).
_STATE = ("windows", "page", "pass", "digests", "previous", "passStartedAt", "tally", "counted")


def mark_listed(rows: list[dict[str, Any]], at: datetime | None = None) -> list[dict[str, Any]]:
    """Stamp rows a listing served: `listedAt` now (or `at`), `deletedAt` cleared.

    Call it on the rows of every listing upsert, so a record Tiny serves again after being
    marked deleted is current again, and rows a complete listing missed can be found.
    """
    at = at or utcnow()
    for row in rows:
        row["listedAt"] = at
        row["deletedAt"] = None
    return rows


def paged(
    ctx: ModuleContext,
    service: str,
    list_key: str,
    item_key: str,
    params_for: ParamsFor,
    write: WritePage,
    *,
    splittable: bool = True,
    confirm: bool = True,
    window: tuple[date, date] | None = None,
) -> bool:
    """Fetch and `write` every page of the listing; True when done, False out of time.

    `params_for(start, end)` gives the query for a date window (the run's, or `window`).
    Tiny refuses a query that matches too many records (code 21); a `splittable` window is
    then split in two and each half listed in turn.

    Page numbers are no cursor: a record leaving the listing between two pages moves the
    later ones up, so one is never served. So a window whose first pass has more than one
    page is listed again until two consecutive passes serve the same pages (a digest of each
    page's ids), at most SYNC_LISTING_MAX_PASSES passes; past that the module's verification
    says the listing kept moving. A record matching throughout is skipped in a pass only if a
    record served earlier in it left, which makes the next pass differ; so two equal passes
    mean the first of them skipped nothing. Every page of every pass is written. `confirm=False`
    reads one pass (a listing that empties as it is read).

    The module's counts (processed, skipped, errors, counters, verification) are those of the
    pass that was accepted, once per record: the first pass counts live, later passes are
    tallied in the checkpoint and replace it when accepted.

    The windows left, the pass, its page and the digests live in the checkpoint, so a resumed
    module continues exactly after the last committed page, comparison included. When done,
    the checkpoint keeps `served`: `[start, end, since]` per window, `since` being when its
    accepted pass began (its rows have `listedAt >= since`). `write(records, page_no)` must
    commit (through `ctx.commit`).
    """
    cp = ctx.checkpoint
    if "windows" not in cp:
        start, end = window or (ctx.window_start, ctx.window_end)
        cp.update(windows=[[start.isoformat(), end.isoformat()]], served=[])
    windows: list[list[str]] = cp["windows"]
    while windows:
        start, end = (date.fromisoformat(day) for day in windows[0])
        if int(cp.get("page") or 1) != PASS_READ:
            try:
                if not _read_pass(ctx, service, list_key, item_key, params_for, write, confirm):
                    return False
            except TinyQueryTooLarge:
                if not splittable or start >= end or int(cp.get("page") or 1) > 1:
                    raise
                _split(ctx, service, start, end)
                continue
        _compare_pass(ctx, service, confirm)
        if windows and ctx.out_of_time():
            return False
    for key in _STATE:
        cp.pop(key, None)
    return True


def _read_pass(
    ctx: ModuleContext,
    service: str,
    list_key: str,
    item_key: str,
    params_for: ParamsFor,
    write: WritePage,
    confirm: bool,
) -> bool:
    """Read the pass over windows[0] from its next page; False when out of time."""
    cp = ctx.checkpoint
    start, end = (date.fromisoformat(day) for day in cp["windows"][0])
    first = int(cp.get("page") or 1)
    if first == 1:
        cp.update(passStartedAt=utcnow().isoformat(), digests=[], tally=None)
        cp.setdefault("pass", 1)

    def fetch(number: int) -> Page:
        return ctx.list_page(service, list_key, item_key, params_for(start, end), number)

    ctx.tally_key = "tally" if confirm else None
    ctx.count_live = int(cp.get("pass") or 1) == 1
    try:
        for page_no, page in enumerate(walk_pages(fetch, first), start=first):
            last = page.is_last or not page.records
            cp["digests"].append(_digest(page.records))
            cp["page"] = PASS_READ if last else page_no + 1
            # For the bars of the CLI and the UI: where the listing is, when Tiny says its size.
            ctx.entry.extra["listing"] = {"page": page_no, "pages": page.total_pages}
            write(page.records, page_no)
            if last:
                return True
            if ctx.out_of_time():
                return False
    finally:
        ctx.tally_key, ctx.count_live = None, True
    return True  # walk_pages always ends on a last page; kept for the type checker


def _compare_pass(ctx: ModuleContext, service: str, confirm: bool) -> None:
    """The pass over windows[0] is read: accept it, or start the next one (committed)."""
    cp = ctx.checkpoint
    number = int(cp.get("pass") or 1)
    digests: list[str] = cp.get("digests") or []
    tally = ModuleProgress.from_json(cp.get("tally"))
    counted = tally if number == 1 else ModuleProgress.from_json(cp.get("counted"))
    single = number == 1 and len(digests) <= 1
    agreed = single or not confirm or digests == cp.get("previous")
    capped = not agreed and number >= ctx.settings.sync_listing_max_passes
    if agreed or capped:
        delta = _delta(counted, tally) if confirm else {}
        if capped:
            delta.setdefault("verified", Verification()).unconfirmed.append(LISTING_KEPT_MOVING)
            ctx.log_line(
                "warn",
                f"{service}: a listagem ainda mudava após {number} passagens "
                f"(SYNC_LISTING_MAX_PASSES); pode faltar algum registro até a próxima execução",
                module=ctx.module,
            )
        window = cp["windows"].pop(0)
        since = cp.get("passStartedAt") or utcnow().isoformat()
        cp.setdefault("served", []).append([*window, since])
        for key in _STATE[1:]:
            cp.pop(key, None)
        ctx.commit(**delta)
        return
    if number >= 2:
        ctx.log_line(
            "info",
            f"{service}: a listagem mudou durante a leitura; lendo de novo (passagem {number + 1})",
            module=ctx.module,
        )
    cp.update(page=1, previous=digests, digests=[], tally=None, counted=counted.to_json())
    cp["pass"] = number + 1
    ctx.commit()


def _split(ctx: ModuleContext, service: str, start: date, end: date) -> None:
    """Tiny refused windows[0] (code 21): list its halves apart, each from its first pass."""
    cp = ctx.checkpoint
    middle = start + (end - start) // 2
    cp["windows"][0:1] = [
        [start.isoformat(), middle.isoformat()],
        [(middle + timedelta(days=1)).isoformat(), end.isoformat()],
    ]
    ctx.log_line(
        "warn",
        f"{service}: o Tiny diz que {_br(start)} a {_br(end)} tem registros demais; "
        f"listando {_br(start)} a {_br(middle)} e {_br(middle + timedelta(days=1))} a "
        f"{_br(end)} em separado",
        module=ctx.module,
    )
    # The window's first pass (if one was read before a later pass was refused) counted live.
    counted = ModuleProgress.from_json(cp.get("counted"))
    for key in _STATE[1:]:
        cp.pop(key, None)
    ctx.commit(**_delta(counted, ModuleProgress()))


def _br(day: date) -> str:
    return f"{day:%d/%m/%Y}"


def _digest(records: list[dict[str, Any]]) -> str:
    """A page's ids, in the order served, in 16 hex digits."""
    ids = ",".join(str(record.get("id")) for record in records)
    return hashlib.blake2b(ids.encode(), digest_size=8).hexdigest()


def _delta(counted: ModuleProgress, accepted: ModuleProgress) -> dict[str, Any]:
    """`ctx.commit` arguments that turn the counts of `counted` into those of `accepted`."""
    old, new = counted.verified, accepted.verified
    kinds = set(old.corrected) | set(new.corrected)
    verified = Verification(
        listed=new.listed - old.listed,
        stored=new.stored - old.stored,
        corrected={k: new.corrected.get(k, 0) - old.corrected.get(k, 0) for k in kinds},
        set_aside=new.set_aside - old.set_aside,
        set_aside_named=[n for n in new.set_aside_named if n not in old.set_aside_named],
        unconfirmed=list(new.unconfirmed),
    )
    names = set(counted.counters) | set(accepted.counters)
    return {
        "processed": accepted.processed - counted.processed,
        "skipped": accepted.skipped - counted.skipped,
        "errors": [e for e in accepted.errors if e not in counted.errors] or None,
        "counters": {n: accepted.counters.get(n, 0) - counted.counters.get(n, 0) for n in names},
        "verified": verified,
    }


def batched(
    ctx: ModuleContext,
    service: str,
    record_key: str,
    next_ids: Callable[[], list[int]],
    write: WriteBatch,
) -> bool:
    """Fetch records by id, batch after batch, until `next_ids()` is empty.

    True when done, False when out of time. `write(fetched)` must commit (through
    `ctx.commit`) and must make `next_ids` move on; a record Tiny does not have comes as None.
    A back-off longer than the step ends a batch early: what was fetched is written first,
    then the pause is raised, so a pause never throws away calls already made.
    """
    while True:
        ids = next_ids()
        if not ids:
            return True
        fetched, pause = ctx.get_records(service, record_key, ids)
        write(fetched)
        if pause is not None:
            raise pause
        if ctx.out_of_time():
            return False


def stored_ids_after(
    ctx: ModuleContext, model: Any, after: int, limit: int, *where: ColumnElement[bool]
) -> list[int]:
    """The next `limit` Tiny ids (above `after`) of the company's not-deleted `model` rows
    matching `where`: the cursor a re-read walks with `batched`."""
    with ctx.session_factory() as session:
        return list(
            session.scalars(
                select(model.tinyId)
                .where(
                    model.companyId == ctx.company_id,
                    model.deletedAt.is_(None),
                    model.tinyId > after,
                    *where,
                )
                .order_by(model.tinyId)
                .limit(limit)
            )
        )
