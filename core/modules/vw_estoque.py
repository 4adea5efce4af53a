"""Stock (`vw_estoque`): the products, which of them left the active set, then balances.

Phases, each resumable from the checkpoint:
1. `list` — active products (`produtos.pesquisa.php`, `situacao=A`): all of them in a full run,
   those created since the watermark in an incremental one (`dataCriacao`, Brasília's date).
2. `inactive`, `deleted` — when stored products were not served by that listing, the products
   listed `situacao=I` and `situacao=E` (usually one page each) confirm which of them Tiny
   deactivated (stored `situacao` I) or deleted (`deletedAt`). Only stored rows are touched.
3. `updates` (incremental) — `lista.atualizacoes.estoque`, which empties as it is read: page 1
   again and again, each page committed before the next call, until it answers no records.
4. `balances` — `produto.obter.estoque.php`, one call per product. A full run asks every active
   product. An incremental run asks new products, then re-checks the balances checked longest
   ago (`stockCheckedAt` ascending): at least `ceil(active × beat / (max age − beat))` a run,
   and always every one older than `max age − beat`, so a change the queue lost (read, then a
   crash before its commit) is corrected: with incremental runs starting at least every
   `SYNC_BEAT_INTERVAL_MINUTES`, no balance is older than `SYNC_STOCK_MAX_AGE_HOURS` plus one
   run. Code 32 on a re-check marks the product deleted.
Accounts without the paid queue add-on answer it with an error; the run then asks every product.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from core.errors import TinyPermanentError
from core.models import StockItem, utcnow
from core.modules.base import ModuleContext
from core.modules.paging import batched, paged
from core.runs.model import Verification
from core.upsert import upsert
from core.values import (
    BadValue,
    log_set_aside,
    map_records,
    parse_id,
    parse_money,
    parse_quantity,
    parse_text,
    set_aside_note,
)
from core.wording import tiny_error_text

LIST_SERVICE = "produtos.pesquisa.php"
STOCK_SERVICE = "produto.obter.estoque.php"
UPDATES_SERVICE = "lista.atualizacoes.estoque"
STOCK_BATCH = 10
BRASILIA = ZoneInfo("America/Sao_Paulo")
#: Asked again before the watermark: covers a Tiny clock up to this far behind ours. Costless
#: for the queue (what it served is gone) and a few products for `dataCriacao` (a whole day).
WATERMARK_OVERLAP = timedelta(minutes=30)

#: Products that count: active (or of unknown situacao) and not deleted.
ACTIVE = and_(
    StockItem.deletedAt.is_(None), or_(StockItem.situacao.is_(None), StockItem.situacao == "A")
)


def map_product(company_id: str, record: dict[str, Any], listed_at: datetime) -> dict[str, Any]:
    """A product listing record to a StockItem row (without the balance); raises BadValue."""
    return {
        "companyId": company_id,
        "tinyId": parse_id(record.get("id")),
        "codigo": parse_text(record.get("codigo"), "codigo", 100),
        "nome": parse_text(record.get("nome"), "nome", 300),
        "unidade": parse_text(record.get("unidade"), "unidade", 20),
        "preco": parse_money(record.get("preco"), "preco"),
        "situacao": parse_text(record.get("situacao"), "situacao", 5),
        "syncedAt": listed_at,
        "listedAt": listed_at,
        "deletedAt": None,  # served again: not deleted (any more)
    }


def map_stock(company_id: str, record: dict[str, Any], checked_at: datetime) -> dict[str, Any]:
    """A stock record (`produto` with `saldo` and `depositos`) to StockItem balance columns."""
    depositos = []
    for entry in record.get("depositos") or []:
        dep = entry.get("deposito", entry) if isinstance(entry, dict) else {}
        saldo = parse_quantity(dep.get("saldo"), "deposito.saldo")
        depositos.append(
            {
                "nome": parse_text(dep.get("nome"), "deposito.nome", 200),
                "saldo": str(saldo) if saldo is not None else None,
                "desconsiderar": parse_text(dep.get("desconsiderar"), "desconsiderar", 5),
                "empresa": parse_text(dep.get("empresa"), "deposito.empresa", 200),
            }
        )
    return {
        "companyId": company_id,
        "tinyId": parse_id(record.get("id")),
        "codigo": parse_text(record.get("codigo"), "codigo", 100),
        "nome": parse_text(record.get("nome"), "nome", 300),
        "unidade": parse_text(record.get("unidade"), "unidade", 20),
        "saldo": parse_quantity(record.get("saldo"), "saldo") or Decimal("0"),
        "saldoReservado": parse_quantity(record.get("saldoReservado"), "saldoReservado")
        or Decimal("0"),
        "depositosJson": depositos,
        "stockCheckedAt": checked_at,
        "syncedAt": utcnow(),
    }


_BALANCE_COLUMNS = ("saldo", "saldoReservado", "depositosJson", "stockCheckedAt", "syncedAt")


def recheck_plan(active: int, beat_minutes: float, max_age_hours: float) -> tuple[int, timedelta]:
    """(balances to re-check per run, age past which a balance is always re-checked).

    A balance re-checked by one run must not be older than the max age when the run after the
    next one starts, so the horizon is the max age minus one beat interval; re-checking the
    oldest `ceil(active × beat / horizon)` per run goes round every product within it.
    """
    beat = max(beat_minutes, 0.0)
    horizon = max_age_hours * 60 - beat
    if horizon <= 0:
        return active, timedelta(0)
    return math.ceil(active * beat / horizon), timedelta(minutes=horizon)


class StockModule:
    key = "vw_estoque"

    def run(self, ctx: ModuleContext) -> bool:
        """Products, those that left, changes, balances; True when finished."""
        cp = ctx.checkpoint
        if "startedAt" not in cp:
            mark = ctx.fresh_watermark()
            cp.update(
                startedAt=utcnow().isoformat(),
                watermark=utcnow().isoformat(),
                since=(mark - WATERMARK_OVERLAP).isoformat() if mark else None,
                phase="list",
            )
        since = datetime.fromisoformat(cp["since"]) if cp.get("since") else None
        if cp["phase"] == "list":
            params: dict[str, Any] = {"pesquisa": "", "situacao": "A"}
            if since is not None:  # Tiny's dates are Brasília's: 22:30 there is tomorrow in UTC
                params["dataCriacao"] = since.astimezone(BRASILIA).date()
            if not _paged_once(ctx, params, partial(self._products, ctx)):
                return False
            served = cp.pop("served", None) or []
            # Products its accepted pass served are stamped at or after the pass began.
            cp["activeSince"] = served[0][2] if served else cp["startedAt"]
            cp["phase"] = "inactive" if self._unlisted(ctx) else "updates"
            ctx.commit()
        for situacao, phase, after in (("I", "inactive", "deleted"), ("E", "deleted", "updates")):
            if cp["phase"] == phase:
                params = {"pesquisa": "", "situacao": situacao}
                if not _paged_once(ctx, params, partial(self._left, ctx, situacao)):
                    return False
                cp.pop("served", None)
                cp["phase"] = after
                ctx.commit()
        if cp["phase"] == "updates":
            if since is not None and not self._updates(ctx, since):
                return False
            cp["phase"] = "balances"
            ctx.commit()
        return self._balances(ctx)

    # -- products ------------------------------------------------------------------------
    def _products(self, ctx: ModuleContext, records: list[dict[str, Any]], page_no: int) -> None:
        page = map_records(
            records, partial(map_product, ctx.company_id, listed_at=utcnow()), "produto"
        )
        ctx.commit(
            lambda s: upsert(s, StockItem, page.rows),
            skipped=len(page.set_aside),
            counters={"listed": len(page.rows)},
            errors=page.set_aside or None,
            verified=page.verification(),
        )
        log_set_aside(ctx.log_line, ctx.module, page.set_aside)

    def _unlisted(self, ctx: ModuleContext) -> int:
        """Stored active products this run's product listing did not serve."""
        since = datetime.fromisoformat(
            ctx.checkpoint.get("activeSince") or ctx.checkpoint["startedAt"]
        )
        return _count(ctx, ACTIVE, or_(StockItem.listedAt.is_(None), StockItem.listedAt < since))

    def _left(
        self, ctx: ModuleContext, situacao: str, records: list[dict[str, Any]], page_no: int
    ) -> None:
        """A page of inactive (I) or deleted (E) products: mark the stored ones."""
        ids = set()
        for record in records:
            try:
                ids.add(parse_id(record.get("id")))
            except BadValue:
                continue  # nothing of ours can carry a bad id
        now = utcnow()
        mine = and_(StockItem.companyId == ctx.company_id, StockItem.tinyId.in_(ids))
        kind = "deactivated"
        changed = or_(StockItem.situacao.is_distinct_from("I"), StockItem.deletedAt.is_not(None))
        values: dict[str, Any] = {"situacao": "I", "deletedAt": None}  # it exists
        if situacao == "E":
            kind, changed = "deleted", StockItem.deletedAt.is_(None)
            values = {"situacao": "E", "deletedAt": now}
        found = _count(ctx, mine, changed)

        def write(session: Session) -> None:
            session.execute(update(StockItem).where(mine, changed).values(syncedAt=now, **values))

        ctx.commit(write, verified=Verification(corrected={kind: found}) if found else None)

    # -- the queue of stock changes ------------------------------------------------------
    def _updates(self, ctx: ModuleContext, since: datetime) -> bool:
        try:
            return _drain_queue(ctx, {"dataAlteracao": since}, partial(self._queued, ctx))
        except TinyPermanentError as exc:
            ctx.log_line(
                "warn",
                f"a fila de alterações de estoque não está disponível ({tiny_error_text(exc)}); "
                "consultando cada produto",
                module=ctx.module,
            )
            ctx.checkpoint["since"] = None
            return True

    def _queued(self, ctx: ModuleContext, records: list[dict[str, Any]]) -> None:
        """A page of the queue: the balances of stored products (others wait for a listing)."""
        now = utcnow()
        page = map_records(records, lambda rec: map_stock(ctx.company_id, rec, now), "produto")
        with ctx.session_factory() as session:
            known = set(
                session.scalars(
                    select(StockItem.tinyId).where(
                        StockItem.companyId == ctx.company_id,
                        StockItem.tinyId.in_([r["tinyId"] for r in page.rows]),
                    )
                )
            )
        rows = [r for r in page.rows if r["tinyId"] in known]
        ctx.commit(
            lambda s: upsert(s, StockItem, rows, update=_BALANCE_COLUMNS),
            processed=len(rows),
            skipped=len(page.set_aside),
            counters={"queued": len(records)},
            errors=page.set_aside or None,
        )
        log_set_aside(ctx.log_line, ctx.module, page.set_aside)

    # -- balances ------------------------------------------------------------------------
    def _balances(self, ctx: ModuleContext) -> bool:
        cp = ctx.checkpoint
        started = datetime.fromisoformat(cp["startedAt"])
        mine = and_(StockItem.companyId == ctx.company_id, ACTIVE)
        if cp.get("since") and "quota" not in cp:
            quota, horizon = recheck_plan(
                _count(ctx, ACTIVE),
                ctx.settings.sync_beat_interval_minutes,
                ctx.settings.sync_stock_max_age_hours,
            )
            cp.update(quota=quota, dueBefore=(started - horizon).isoformat(), checked=0)

        def select_ids(stale: ColumnElement[bool], limit: int) -> list[int]:
            with ctx.session_factory() as session:
                return list(
                    session.scalars(
                        select(StockItem.tinyId)
                        .where(mine, stale)
                        .order_by(StockItem.stockCheckedAt.asc().nulls_first(), StockItem.tinyId)
                        .limit(limit)
                    )
                )

        never = StockItem.stockCheckedAt.is_(None)
        before_run = or_(never, StockItem.stockCheckedAt < started)

        def next_ids() -> list[int]:
            if "quota" not in cp:  # a full run: every active product
                return select_ids(before_run, STOCK_BATCH)
            due = datetime.fromisoformat(cp["dueBefore"])
            must = select_ids(or_(never, StockItem.stockCheckedAt < due), STOCK_BATCH)
            left = int(cp["quota"]) - int(cp["checked"])
            if must or left <= 0:
                return must
            return select_ids(before_run, min(STOCK_BATCH, left))

        def write(records: dict[int, dict[str, Any] | None]) -> None:
            if "checked" in cp:
                cp["checked"] += len(records)
            _write_balances(ctx, records)

        return batched(ctx, STOCK_SERVICE, "produto", next_ids, write)


def _count(ctx: ModuleContext, *where: ColumnElement[bool]) -> int:
    """The company's stored products that match `where`."""
    with ctx.session_factory() as session:
        query = select(func.count(StockItem.id)).where(StockItem.companyId == ctx.company_id)
        return int(session.scalar(query.where(*where)) or 0)


def _paged_once(
    ctx: ModuleContext, params: dict[str, Any], write: Callable[[list[dict[str, Any]], int], None]
) -> bool:
    """A product listing: one query (not split by date), paged from the checkpoint."""
    return paged(
        ctx, LIST_SERVICE, "produtos", "produto", lambda _s, _e: params, write, splittable=False
    )


def _drain_queue(
    ctx: ModuleContext, params: dict[str, Any], write: Callable[[list[dict[str, Any]]], None]
) -> bool:
    """Read `lista.atualizacoes.estoque` to its end; True when empty, False out of time.

    Tiny removes a served page from the queue, so what was page 2 is page 1 next time: always
    ask page 1 again, after `write` committed the page before it (a change read but not
    committed is gone; the rolling re-check corrects it). An account whose queue keeps what it
    served answers page 1 twice alike; it is then walked page by page (`queuePage`).
    """
    cp = ctx.checkpoint
    while True:
        number = int(cp.get("queuePage") or 1)
        page = ctx.list_page(UPDATES_SERVICE, "produtos", "produto", params, number)
        digest = _digest(page.records)
        if number == 1 and page.records and digest == cp.get("queueDigest"):
            ctx.log_line(
                "info",
                f"{UPDATES_SERVICE} mantém o que já entregou; lendo página por página",
                module=ctx.module,
            )
            cp["queuePage"] = 2
            if page.is_last:
                break
            continue
        if not page.records:
            break
        cp["queueDigest"] = digest
        if number > 1:
            cp["queuePage"] = number + 1
        write(page.records)
        if page.is_last:
            break
        if ctx.out_of_time():
            return False
    for key in ("queuePage", "queueDigest"):
        cp.pop(key, None)
    return True


def _digest(records: list[dict[str, Any]]) -> str:
    """The ids and change times of a queue page, to tell a page served twice."""
    seen = sorted(f"{r.get('id')}@{r.get('data_alteracao')}" for r in records)
    return hashlib.sha256("|".join(seen).encode()).hexdigest()


def _write_balances(ctx: ModuleContext, records: dict[int, dict[str, Any] | None]) -> None:
    """Store fetched balances; a product Tiny no longer has (code 32) is marked deleted."""
    now = utcnow()
    full: list[dict[str, Any]] = []
    gone: list[int] = []
    set_aside: list[str] = []
    for tiny_id, record in records.items():
        if not record:
            gone.append(tiny_id)
            continue
        try:
            full.append(map_stock(ctx.company_id, record, now))
        except BadValue as exc:  # marked checked all the same: this run does not ask again
            set_aside.append(set_aside_note("produto", tiny_id, exc, what="saldo"))
    fetched = {r["tinyId"] for r in full}
    odd = [i for i in records if i not in gone and i not in fetched]
    with ctx.session_factory() as session:
        rows = session.execute(
            select(StockItem.tinyId, StockItem.saldo).where(
                StockItem.companyId == ctx.company_id, StockItem.tinyId.in_(list(records))
            )
        )
        before = {tiny_id: saldo for tiny_id, saldo in rows}
    moved = sum(1 for r in full if before.get(r["tinyId"]) not in (None, r["saldo"]))
    corrected = {k: v for k, v in (("moved", moved), ("deleted", len(gone))) if v}

    def write(session: Session) -> None:
        upsert(session, StockItem, full, update=_BALANCE_COLUMNS)
        mine = StockItem.companyId == ctx.company_id
        if gone:
            session.execute(
                update(StockItem)
                .where(mine, StockItem.tinyId.in_(gone))
                .values(stockCheckedAt=now, deletedAt=now)
            )
        if odd:
            session.execute(
                update(StockItem).where(mine, StockItem.tinyId.in_(odd)).values(stockCheckedAt=now)
            )

    ctx.commit(
        write,
        processed=len(full),
        skipped=len(set_aside),
        counters={"checked": len(records)},
        errors=set_aside or None,
        verified=Verification(corrected=corrected) if corrected else None,
    )
    log_set_aside(ctx.log_line, ctx.module, set_aside)
    for tiny_id in gone:
        ctx.log_line(
            "info",
            f"produto {tiny_id} não existe mais no Tiny (código 32): marcado excluído",
            module=ctx.module,
        )


MODULE = StockModule()
