"""Sales (`vw_vendas`): list orders, then enrich new or changed ones with their items.

Listing: `pedidos.pesquisa.php` by order date for the run's window, or — in incremental mode
with a recent watermark — by `dataAtualizacao` (changed since), so an unchanged account costs
one call. Enrichment: `pedido.obter.php` for orders flagged `needsEnrichment` (new, or whose
listing fingerprint changed), at most TINY_MAX_ENRICH_PER_RUN per run; the rest wait for the
next run, which the log says.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.models import SalesOrder, SalesOrderItem, utcnow
from core.modules.base import ModuleContext
from core.modules.paging import batched, paged
from core.tiny import parse_date, parse_decimal, parse_int, parse_text
from core.upsert import upsert

LIST_SERVICE = "pedidos.pesquisa.php"
DETAIL_SERVICE = "pedido.obter.php"
ENRICH_BATCH = 10
#: Changes stamped while a listing runs must not fall between two watermarks.
WATERMARK_OVERLAP = timedelta(minutes=5)

_LIST_FIELDS = (
    "numero",
    "numeroEcommerce",
    "dataPedido",
    "dataPrevista",
    "nomeCliente",
    "valor",
    "idVendedor",
    "nomeVendedor",
    "situacao",
    "codigoRastreamento",
)


def map_order(company_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """A listing record to a SalesOrder row; None when it has no usable id."""
    tiny_id = parse_int(record.get("id"))
    if tiny_id is None:
        return None
    row: dict[str, Any] = {
        "companyId": company_id,
        "tinyId": tiny_id,
        "numero": parse_text(record.get("numero"), 50),
        "numeroEcommerce": parse_text(record.get("numero_ecommerce"), 100),
        "dataPedido": parse_date(record.get("data_pedido")),
        "dataPrevista": parse_date(record.get("data_prevista")),
        "nomeCliente": parse_text(record.get("nome"), 300),
        "valor": parse_decimal(record.get("valor")),
        "idVendedor": parse_int(record.get("id_vendedor")),
        "nomeVendedor": parse_text(record.get("nome_vendedor"), 200),
        "situacao": parse_text(record.get("situacao"), 60),
        "codigoRastreamento": parse_text(record.get("codigo_rastreamento"), 100),
    }
    fingerprint = "\x1f".join(str(row[f]) for f in _LIST_FIELDS)
    row["listFingerprint"] = hashlib.md5(fingerprint.encode()).hexdigest()
    row["needsEnrichment"] = True
    row["syncedAt"] = utcnow()
    return row


def _flag_if_changed(excluded: Any) -> dict[str, Any]:
    # Keep an enriched order enriched unless its listing changed since.
    changed = or_(
        SalesOrder.listFingerprint.is_(None),
        SalesOrder.listFingerprint != excluded.listFingerprint,
    )
    return {"needsEnrichment": or_(changed, SalesOrder.needsEnrichment)}


class SalesModule:
    key = "vw_vendas"

    def run(self, ctx: ModuleContext) -> bool:
        """List, then enrich; True when both phases are finished."""
        cp = ctx.checkpoint
        if cp.get("phase", "list") == "list":
            if not self._list(ctx):
                return False
            cp.update(phase="enrich", enriched=0)
            ctx.commit()
        return self._enrich(ctx)

    def _list(self, ctx: ModuleContext) -> bool:
        cp = ctx.checkpoint
        if "since" not in cp:
            since = ctx.fresh_watermark()
            cp["watermark"] = utcnow().isoformat()
            cp["since"] = (since - WATERMARK_OVERLAP).isoformat() if since else None
        since = datetime.fromisoformat(cp["since"]) if cp["since"] else None

        def params_for(start: date, end: date) -> dict[str, Any]:
            if since is not None:
                return {"dataAtualizacao": since}
            return {"dataInicial": start, "dataFinal": end}

        def write(records: list[dict[str, Any]], page_no: int) -> None:
            rows = [r for r in (map_order(ctx.company_id, rec) for rec in records) if r]
            bad = len(records) - len(rows)
            ctx.commit(
                partial(upsert, model=SalesOrder, rows=rows, extra_set=_flag_if_changed),
                processed=len(rows),
                skipped=bad,
                errors=[f"{bad} orders on page {page_no} had no id"] if bad else None,
            )

        return paged(
            ctx, LIST_SERVICE, "pedidos", "pedido", params_for, write, splittable=since is None
        )

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
                        )
                        .order_by(SalesOrder.dataPedido.desc(), SalesOrder.tinyId.desc())
                        .limit(min(room, ENRICH_BATCH))
                    )
                )

        def write(details: dict[int, dict[str, Any] | None]) -> None:
            missing = [i for i, d in details.items() if d is None]
            ctx.checkpoint["enriched"] = int(ctx.checkpoint.get("enriched", 0)) + len(details)
            ctx.commit(
                partial(_write_details, company_id=ctx.company_id, details=details),
                skipped=len(missing),
                counters={"enriched": len(details) - len(missing)},
                errors=[f"order {i} no longer exists in Tiny (code 32)" for i in missing] or None,
            )

        if not batched(ctx, DETAIL_SERVICE, "pedido", next_ids, write):
            return False
        with ctx.session_factory() as session:
            left = session.scalar(
                select(func.count())
                .select_from(SalesOrder)
                .where(SalesOrder.companyId == ctx.company_id, SalesOrder.needsEnrichment.is_(True))
            )
        if left:
            ctx.log_line(
                "info",
                f"{left} orders still need their items; they will be enriched by the next runs "
                f"(TINY_MAX_ENRICH_PER_RUN={cap})",
                module=ctx.module,
                metadata={"left": left},
            )
        return True


def _write_details(
    session: Session, company_id: str, details: dict[int, dict[str, Any] | None]
) -> None:
    now = utcnow()
    items: list[dict[str, Any]] = []
    for tiny_id, detail in details.items():
        values: dict[str, Any] = {"needsEnrichment": False, "enrichedAt": now}
        if detail is not None:
            cliente = detail.get("cliente")
            cliente = cliente if isinstance(cliente, dict) else {}
            values.update(
                dataFaturamento=parse_date(detail.get("data_faturamento")),
                cpfCnpj=parse_text(cliente.get("cpf_cnpj"), 30)
                if isinstance(cliente, dict)
                else None,
                totalProdutos=parse_decimal(detail.get("total_produtos")),
                totalPedido=parse_decimal(detail.get("total_pedido")),
                valorDesconto=parse_decimal(detail.get("valor_desconto")),
                valorFrete=parse_decimal(detail.get("valor_frete")),
            )
            for position, entry in enumerate(detail.get("itens") or [], start=1):
                item = entry.get("item", entry) if isinstance(entry, dict) else {}
                items.append(
                    {
                        "companyId": company_id,
                        "orderTinyId": tiny_id,
                        "position": position,
                        "codigo": parse_text(item.get("codigo"), 100),
                        "descricao": parse_text(item.get("descricao"), 500),
                        "quantidade": parse_decimal(item.get("quantidade")),
                        "valorUnitario": parse_decimal(item.get("valor_unitario")),
                    }
                )
        session.execute(
            update(SalesOrder)
            .where(SalesOrder.companyId == company_id, SalesOrder.tinyId == tiny_id)
            .values(**values)
        )
    session.execute(
        delete(SalesOrderItem).where(
            SalesOrderItem.companyId == company_id,
            SalesOrderItem.orderTinyId.in_(list(details)),
        )
    )
    if items:
        upsert(session, SalesOrderItem, items, key=("companyId", "orderTinyId", "position"))


MODULE = SalesModule()
