"""Stock (`vw_estoque`): the products, then each product's balance.

A full run lists active products (`produtos.pesquisa.php`) and asks each one's stock
(`produto.obter.estoque.php`, one call per product, resumable through `stockCheckedAt`).
An incremental run with a recent watermark costs listing calls only: products created since
(`dataCriacao`) and stock changed since (`lista.atualizacoes.estoque`). Accounts without that
paid add-on answer it with an error; the module then falls back to asking every product.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from core.errors import TinyPermanentError
from core.models import StockItem, utcnow
from core.modules.base import ModuleContext
from core.modules.paging import batched, paged
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

LIST_SERVICE = "produtos.pesquisa.php"
STOCK_SERVICE = "produto.obter.estoque.php"
UPDATES_SERVICE = "lista.atualizacoes.estoque"
STOCK_BATCH = 10


def map_product(company_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """A product listing record to a StockItem row (without the balance); raises BadValue."""
    return {
        "companyId": company_id,
        "tinyId": parse_id(record.get("id")),
        "codigo": parse_text(record.get("codigo"), "codigo", 100),
        "nome": parse_text(record.get("nome"), "nome", 300),
        "unidade": parse_text(record.get("unidade"), "unidade", 20),
        "preco": parse_money(record.get("preco"), "preco"),
        "situacao": parse_text(record.get("situacao"), "situacao", 5),
        "syncedAt": utcnow(),
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


class StockModule:
    key = "vw_estoque"

    def run(self, ctx: ModuleContext) -> bool:
        """Products, then changes or balances; True when finished."""
        cp = ctx.checkpoint
        if "startedAt" not in cp:
            since = ctx.fresh_watermark()
            cp.update(
                startedAt=utcnow().isoformat(),
                watermark=utcnow().isoformat(),
                since=since.isoformat() if since else None,
                phase="list",
                page=1,
            )
        since = datetime.fromisoformat(cp["since"]) if cp.get("since") else None
        if cp["phase"] == "list":
            params: dict[str, Any] = {"pesquisa": "", "situacao": "A"}
            if since is not None:
                params["dataCriacao"] = since.date()
            if not _paged_once(ctx, LIST_SERVICE, params, partial(self._products, ctx)):
                return False
            cp.update(phase="updates" if since else "balances", page=1)
            ctx.commit()
        if cp["phase"] == "updates":
            assert since is not None
            try:
                params = {"dataAlteracao": since}
                if not _paged_once(ctx, UPDATES_SERVICE, params, partial(self._stock, ctx)):
                    return False
            except TinyPermanentError as exc:
                ctx.log_line(
                    "warn",
                    f"stock changes are not available ({exc}); asking every product instead",
                    module=ctx.module,
                )
                cp["since"] = None
            cp.update(phase="balances", page=None)
            ctx.commit()
        return self._balances(ctx)

    def _products(self, ctx: ModuleContext, records: list[dict[str, Any]], page_no: int) -> None:
        page = map_records(records, partial(map_product, ctx.company_id), "produto")
        ctx.commit(
            lambda s: upsert(s, StockItem, page.rows),
            skipped=len(page.set_aside),
            counters={"listed": len(page.rows)},
            errors=page.set_aside or None,
            verified=page.verification(),
        )
        log_set_aside(ctx.log_line, ctx.module, page.set_aside)

    def _stock(self, ctx: ModuleContext, records: list[dict[str, Any]], page_no: int) -> None:
        now = utcnow()
        page = map_records(records, lambda rec: map_stock(ctx.company_id, rec, now), "produto")
        ctx.commit(
            lambda s: upsert(s, StockItem, page.rows, update=_BALANCE_COLUMNS),
            processed=len(page.rows),
            skipped=len(page.set_aside),
            errors=page.set_aside or None,
        )
        log_set_aside(ctx.log_line, ctx.module, page.set_aside)

    def _balances(self, ctx: ModuleContext) -> bool:
        started = datetime.fromisoformat(ctx.checkpoint["startedAt"])
        incremental = bool(ctx.checkpoint.get("since"))

        def next_ids() -> list[int]:
            stale: ColumnElement[bool] = StockItem.stockCheckedAt.is_(None)
            if not incremental:
                stale = or_(stale, StockItem.stockCheckedAt < started)
            with ctx.session_factory() as session:
                return list(
                    session.scalars(
                        select(StockItem.tinyId)
                        .where(StockItem.companyId == ctx.company_id, stale)
                        .order_by(StockItem.tinyId)
                        .limit(STOCK_BATCH)
                    )
                )

        def write(records: dict[int, dict[str, Any] | None]) -> None:
            now = utcnow()
            rows: list[dict[str, Any]] = []
            missing: list[int] = []
            set_aside: list[str] = []
            for tiny_id, record in records.items():
                row, note = _balance_row(ctx.company_id, tiny_id, record, now)
                if note is not None:
                    set_aside.append(note)
                elif row is None:
                    missing.append(tiny_id)
                if row is None:  # marked checked all the same: this run does not ask again
                    row = {"companyId": ctx.company_id, "tinyId": tiny_id, "stockCheckedAt": now}
                rows.append(row)
            gone = [f"product {i} not found in Tiny (code 32)" for i in missing]
            ctx.commit(
                partial(_write_balances, rows=rows),
                processed=len(rows) - len(missing) - len(set_aside),
                skipped=len(missing) + len(set_aside),
                errors=gone + set_aside or None,
            )
            log_set_aside(ctx.log_line, ctx.module, set_aside)

        return batched(ctx, STOCK_SERVICE, "produto", next_ids, write)


def _paged_once(
    ctx: ModuleContext,
    service: str,
    params: dict[str, Any],
    write: Callable[[list[dict[str, Any]], int], None],
) -> bool:
    """A product listing: one query (not split by date), paged from the checkpoint."""
    return paged(
        ctx, service, "produtos", "produto", lambda _s, _e: params, write, splittable=False
    )


def _balance_row(
    company_id: str, tiny_id: int, record: dict[str, Any] | None, now: datetime
) -> tuple[dict[str, Any] | None, str | None]:
    """The balance row of one product, or None and why not (None: Tiny no longer has it)."""
    if not record:
        return None, None
    try:
        return map_stock(company_id, record, now), None
    except BadValue as exc:
        return None, set_aside_note("produto", tiny_id, exc, what="saldo")


def _write_balances(session: Session, rows: list[dict[str, Any]]) -> None:
    full = [r for r in rows if "saldo" in r]
    marked = [r for r in rows if "saldo" not in r]
    upsert(session, StockItem, full, update=_BALANCE_COLUMNS)
    upsert(session, StockItem, marked, update=("stockCheckedAt",))


MODULE = StockModule()
