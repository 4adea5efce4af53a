"""Sales (`vw_vendas`): list orders, re-read the ones the listing no longer serves, then
enrich new or changed ones with their items.

Listing: `pedidos.pesquisa.php` by order date for the run's window, or — in incremental mode
with a recent watermark — by `dataAtualizacao` (changed since), so an unchanged account costs
one call. Tiny refuses a listing matching too many records (code 21): a window is split in
halves; an incremental listing is narrowed the same way over an order-date window
(`dataInicial`/`dataFinal` sent with `dataAtualizacao`) from CHANGES_FROM to a year ahead.
Every listed row gets `listedAt` (and loses any `deletedAt`: Tiny serves it). The watermark
is Tiny's clock at the listing's first answer (`ModuleContext.anchor_watermark`).

Re-read (a listing by order date only): every stored order of the window, not deleted, that
the complete listing did not serve (`listedAt` before the listing started) is read again with
`pedido.obter.php`: code 32 marks it deleted (`deletedAt`), otherwise it takes its current
values (its date may have left the window) with its items. Tiny announces no deletes; this is
how a deleted order stops counting.

Enrichment: `pedido.obter.php` for orders flagged `needsEnrichment` (new, or whose listing
fingerprint changed), at most TINY_MAX_ENRICH_PER_RUN per run; the rest wait for the next
run, which the log says. Code 32 there marks the order deleted too.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select

from core.models import SalesOrder, utcnow
from core.modules.base import ModuleContext
from core.modules.orders import (
    Stored,
    correction,
    flag_if_changed,
    listing_view,
    map_detail,
    map_details,
    map_order,
    order_columns,
    write_orders,
)
from core.modules.paging import batched, paged, stored_ids_after
from core.runs.model import Verification
from core.tiny import today_in_brasilia
from core.upsert import upsert
from core.values import (
    BadValue,
    log_set_aside,
    map_records,
    set_aside_note,
    set_aside_ref,
)

LIST_SERVICE = "pedidos.pesquisa.php"
DETAIL_SERVICE = "pedido.obter.php"
ENRICH_BATCH = 10
#: Changes stamped while a listing runs must not fall between two watermarks.
WATERMARK_OVERLAP = timedelta(minutes=5)
#: The order dates an incremental listing narrows over when Tiny refuses it whole.
CHANGES_FROM = date(2000, 1, 1)
CHANGES_AHEAD = timedelta(days=366)


def _stored(ctx: ModuleContext, ids: list[int]) -> Stored:
    if not ids:
        return {}
    with ctx.session_factory() as session:
        rows = session.execute(
            select(SalesOrder.tinyId, SalesOrder.situacao, SalesOrder.listFingerprint).where(
                SalesOrder.companyId == ctx.company_id, SalesOrder.tinyId.in_(ids)
            )
        )
        return {r[0]: (r[1], r[2]) for r in rows}


def _unserved(served: list[list[str]], list_start: str, ctx: ModuleContext) -> ColumnElement[bool]:
    """Stored orders of the window that no accepted pass of the listing served.

    A window's accepted pass (see `paged`) stamped every order it served at or after its
    `since`; an order served only by an earlier pass may have left the listing since. A
    checkpoint from before `served` existed falls back to the whole window and its start.
    """
    windows = served or [[ctx.window_start.isoformat(), ctx.window_end.isoformat(), list_start]]
    return or_(
        *(
            and_(
                SalesOrder.dataPedido >= date.fromisoformat(start),
                SalesOrder.dataPedido <= date.fromisoformat(end),
                or_(
                    SalesOrder.listedAt.is_(None),
                    SalesOrder.listedAt < datetime.fromisoformat(since),
                ),
            )
            for start, end, since in windows
        )
    )


class SalesModule:
    key = "vw_vendas"

    def run(self, ctx: ModuleContext) -> bool:
        """List, re-read what the listing missed, then enrich; True when all are finished."""
        cp = ctx.checkpoint
        if cp.get("phase", "list") == "list":
            if not self._list(ctx):
                return False
            # Only a listing by order date says which stored orders Tiny no longer serves.
            by_date = cp["since"] is None and "listStart" in cp
            # Each window's accepted pass began at `since`: rows it served are stamped later.
            cp["servedWindows"] = cp.pop("served", None) or []
            cp.update(phase="recheck" if by_date else "checked", enriched=0)
            ctx.commit()
        if cp["phase"] == "recheck":
            if not self._recheck(ctx):
                return False
            cp["phase"] = "checked"
        if cp["phase"] == "checked":
            cp["phase"] = "enrich"
            ctx.commit()
        return self._enrich(ctx)

    def _list(self, ctx: ModuleContext) -> bool:
        cp = ctx.checkpoint
        if "since" not in cp:
            since = ctx.fresh_watermark()
            cp["since"] = (since - WATERMARK_OVERLAP).isoformat() if since else None
            cp["listStart"] = utcnow().isoformat()
        if "whole" not in cp:  # fixed once, so a listing resumed another day narrows the same
            ahead = today_in_brasilia() + CHANGES_AHEAD
            cp["whole"] = [CHANGES_FROM.isoformat(), ahead.isoformat()]
        since = datetime.fromisoformat(cp["since"]) if cp["since"] else None
        whole = tuple(date.fromisoformat(d) for d in cp["whole"])

        def params_for(start: date, end: date) -> dict[str, Any]:
            if since is None:
                return {"dataInicial": start, "dataFinal": end}
            if (start, end) == whole:
                return {"dataAtualizacao": since}
            return {"dataAtualizacao": since, "dataInicial": start, "dataFinal": end}

        def write(records: list[dict[str, Any]], page_no: int) -> None:
            ctx.anchor_watermark()
            page = map_records(records, partial(map_order, ctx.company_id, now=utcnow()), "pedido")
            before = _stored(ctx, [r["tinyId"] for r in page.rows])
            verified = page.verification()
            verified.corrected = dict(
                Counter(filter(None, (correction(before.get(r["tinyId"]), r) for r in page.rows)))
            )
            ctx.commit(
                partial(upsert, model=SalesOrder, rows=page.rows, extra_set=flag_if_changed),
                processed=len(page.rows),
                skipped=len(page.set_aside),
                errors=page.set_aside or None,
                verified=verified,
            )
            log_set_aside(ctx.log_line, ctx.module, page.set_aside)

        window = None if since is None else (whole[0], whole[1])
        return paged(ctx, LIST_SERVICE, "pedidos", "pedido", params_for, write, window=window)

    def _recheck(self, ctx: ModuleContext) -> bool:
        """Re-read the window's stored orders the complete listing did not serve."""
        cp = ctx.checkpoint
        unserved = _unserved(cp.get("servedWindows") or [], cp["listStart"], ctx)

        def next_ids() -> list[int]:
            after = int(cp.get("recheckedTo", 0))
            return stored_ids_after(ctx, SalesOrder, after, ENRICH_BATCH, unserved)

        def write(details: dict[int, dict[str, Any] | None]) -> None:
            if details:
                cp["recheckedTo"] = max(details)
            before = _stored(ctx, list(details))
            now = utcnow()
            updates: dict[int, dict[str, Any]] = {}
            items: dict[int, list[dict[str, Any]]] = {}
            corrected: Counter[str] = Counter()
            notes, named = [], []
            for tiny_id, detail in details.items():
                if detail is None:
                    updates[tiny_id] = {"deletedAt": now, "needsEnrichment": False}
                    corrected["deleted"] += 1
                    continue
                try:
                    columns = order_columns(listing_view(detail))
                    values, items[tiny_id] = map_detail(ctx.company_id, tiny_id, detail)
                except BadValue as exc:
                    items.pop(tiny_id, None)
                    notes.append(set_aside_note("pedido", tiny_id, exc, what="pedido relido"))
                    named.append(set_aside_ref("pedido", tiny_id, exc))
                    continue
                kind = correction(before.get(tiny_id), columns)
                if kind is not None:
                    corrected[kind] += 1
                updates[tiny_id] = {
                    **columns,
                    **values,
                    "needsEnrichment": False,
                    "enrichedAt": now,
                    "syncedAt": now,
                }
            ctx.commit(
                partial(write_orders, company_id=ctx.company_id, updates=updates, items=items),
                skipped=len(notes),
                errors=notes or None,
                counters={"rechecked": len(details)},
                verified=Verification(
                    corrected=dict(corrected), set_aside=len(notes), set_aside_named=named
                ),
            )
            log_set_aside(ctx.log_line, ctx.module, notes)

        return batched(ctx, DETAIL_SERVICE, "pedido", next_ids, write)

    def _enrich(self, ctx: ModuleContext) -> bool:
        cap = ctx.settings.tiny_max_enrich_per_run

        def next_ids() -> list[int]:
            room = cap - int(ctx.checkpoint.get("enriched", 0))
            if room <= 0:
                return []
            with ctx.session_factory() as session:
                return list(
                    session.scalars(
                        select(SalesOrder.tinyId)
                        .where(
                            SalesOrder.companyId == ctx.company_id,
                            SalesOrder.needsEnrichment.is_(True),
                            SalesOrder.deletedAt.is_(None),
                        )
                        .order_by(SalesOrder.dataPedido.desc(), SalesOrder.tinyId.desc())
                        .limit(min(room, ENRICH_BATCH))
                    )
                )

        def write(details: dict[int, dict[str, Any] | None]) -> None:
            ctx.checkpoint["enriched"] = int(ctx.checkpoint.get("enriched", 0)) + len(details)
            now = utcnow()
            mapped, set_aside = map_details(ctx.company_id, details)
            # Every order asked is marked enriched, so an order whose detail was set aside is
            # not asked again and again in this run; one Tiny no longer has is deleted.
            updates: dict[int, dict[str, Any]] = {}
            items: dict[int, list[dict[str, Any]]] = {}
            for tiny_id, detail in details.items():
                updates[tiny_id] = {"needsEnrichment": False, "enrichedAt": now}
                if detail is None:
                    updates[tiny_id]["deletedAt"] = now
                elif (found := mapped.get(tiny_id)) is not None:
                    updates[tiny_id].update(found[0])
                    items[tiny_id] = found[1]
            deleted = sum(1 for d in details.values() if d is None)
            ctx.commit(
                partial(write_orders, company_id=ctx.company_id, updates=updates, items=items),
                skipped=len(set_aside),
                counters={"enriched": len(details) - deleted - len(set_aside)},
                errors=set_aside or None,
                verified=Verification(corrected={"deleted": deleted}) if deleted else None,
            )
            log_set_aside(ctx.log_line, ctx.module, set_aside)

        if not batched(ctx, DETAIL_SERVICE, "pedido", next_ids, write):
            return False
        with ctx.session_factory() as session:
            left = session.scalar(
                select(func.count())
                .select_from(SalesOrder)
                .where(
                    SalesOrder.companyId == ctx.company_id,
                    SalesOrder.needsEnrichment.is_(True),
                    SalesOrder.deletedAt.is_(None),
                )
            )
        if left:
            ctx.log_line(
                "info",
                f"{left} pedidos ainda sem itens; serão detalhados nas próximas execuções "
                f"(TINY_MAX_ENRICH_PER_RUN={cap})",
                module=ctx.module,
                metadata={"left": left},
            )
        return True


MODULE = SalesModule()
