"""The two ways a module fetches from Tiny, resumable from its checkpoint: `paged` walks a
listing page by page, `batched` fetches records by id a batch at a time.

Both commit after every page or batch (through the module's `write`, which calls
`ctx.commit`, saving the checkpoint), check for a cancel before every call (through the
context's `list_page`/`get_record`), and stop when the step is out of time, returning False so
the next step continues where this one left off.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from core.errors import TinyQueryTooLarge
from core.modules.base import ModuleContext
from core.tiny import Page, walk_pages

ParamsFor = Callable[[date, date], dict[str, Any]]
WritePage = Callable[[list[dict[str, Any]], int], None]
WriteBatch = Callable[[dict[int, dict[str, Any] | None]], None]


def paged(
    ctx: ModuleContext,
    service: str,
    list_key: str,
    item_key: str,
    params_for: ParamsFor,
    write: WritePage,
    *,
    splittable: bool = True,
    window: tuple[date, date] | None = None,
) -> bool:
    """Fetch and `write` every page of the run's window; True when done, False out of time.

    `window` replaces the run's window (e.g. the order dates an incremental listing narrows
    over when Tiny refuses it whole).

    `params_for(start, end)` gives the query for a date window. Tiny refuses a query that
    matches too many records (code 21); a `splittable` window is then split in two and each
    half listed in turn. The windows left and the next page live in the checkpoint (`windows`,
    `page`), so a resumed module continues exactly after the last committed page; once every
    window is done they are cleared, so the next listing of the module starts afresh.
    `write(records, page_no)` must commit (through `ctx.commit`).
    """
    cp = ctx.checkpoint
    first_day, last_day = window or (ctx.window_start, ctx.window_end)
    windows: list[list[str]] = cp.setdefault(
        "windows", [[first_day.isoformat(), last_day.isoformat()]]
    )
    while windows:
        start, end = (date.fromisoformat(day) for day in windows[0])
        first = int(cp.get("page") or 1)

        def fetch(number: int, start: date = start, end: date = end) -> Page:
            return ctx.list_page(service, list_key, item_key, params_for(start, end), number)

        try:
            for page_no, page in enumerate(walk_pages(fetch, first), start=first):
                if page.is_last or not page.records:
                    windows.pop(0)
                    cp["page"] = 1
                else:
                    cp["page"] = page_no + 1
                write(page.records, page_no)
                if not windows:
                    break
                if ctx.out_of_time():
                    return False
        except TinyQueryTooLarge:
            if not splittable or start >= end or int(cp.get("page") or 1) > 1:
                raise
            middle = start + (end - start) // 2
            windows[0:1] = [
                [start.isoformat(), middle.isoformat()],
                [(middle + timedelta(days=1)).isoformat(), end.isoformat()],
            ]
            ctx.log_line(
                "warn",
                f"{service}: Tiny says {start}..{end} has too many records; "
                f"listing {start}..{middle} and {middle + timedelta(days=1)}..{end} apart",
                module=ctx.module,
            )
    cp.pop("windows", None)
    cp.pop("page", None)
    return True


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
