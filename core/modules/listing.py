"""Paging through a Tiny listing over a date window, from the module's checkpoint.

Tiny refuses a query that matches too many records (code 21); the window is then split in
two and each half listed in turn. The remaining windows and the page live in the checkpoint,
so a resumed module continues exactly where the last committed page left it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from core.errors import TinyQueryTooLarge
from core.modules.base import ModuleContext

ParamsFor = Callable[[date, date], dict[str, Any]]
WritePage = Callable[[list[dict[str, Any]], int], None]


def list_windows(
    ctx: ModuleContext,
    service: str,
    list_key: str,
    item_key: str,
    params_for: ParamsFor,
    write: WritePage,
    *,
    splittable: bool = True,
) -> bool:
    """Fetch and `write` every page of every window; True when done, False when out of time.

    `write(records, page_no)` must commit (through `ctx.commit`), which saves the checkpoint.
    """
    cp = ctx.checkpoint
    windows: list[list[str]] = cp.setdefault(
        "windows", [[ctx.window_start.isoformat(), ctx.window_end.isoformat()]]
    )
    while windows:
        start, end = (date.fromisoformat(day) for day in windows[0])
        page_no = int(cp.get("page") or 1)
        try:
            page = ctx.list_page(service, list_key, item_key, params_for(start, end), page_no)
        except TinyQueryTooLarge:
            if not splittable or start >= end or page_no > 1:
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
            continue
        if page.is_last or not page.records:
            windows.pop(0)
            cp["page"] = 1
        else:
            cp["page"] = page_no + 1
        write(page.records, page_no)
        if not windows:
            return True
        if ctx.out_of_time():
            return False
    return True
