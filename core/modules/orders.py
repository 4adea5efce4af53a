"""A Tiny order as stored rows: its listing record, its detail and items, and how a newly
read order corrects the stored one. The sales module (`vw_vendas`) reads Tiny; this maps."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session

from core.models import SalesOrder, SalesOrderItem, utcnow
from core.upsert import upsert
from core.values import (
    BadValue,
    parse_date,
    parse_id,
    parse_money,
    parse_optional_id,
    parse_quantity,
    parse_text,
    set_aside_note,
)

CANCELED = "Cancelado"
#: What is stored of an order that a new read may correct: tinyId -> (situacao, fingerprint).
Stored = dict[int, tuple[str | None, str | None]]

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


def order_columns(record: dict[str, Any]) -> dict[str, Any]:
    """A listing record's SalesOrder columns and fingerprint; raises BadValue."""
    row: dict[str, Any] = {
        "numero": parse_text(record.get("numero"), "numero", 50),
        "numeroEcommerce": parse_text(record.get("numero_ecommerce"), "numero_ecommerce", 100),
        "dataPedido": parse_date(record.get("data_pedido"), "data_pedido"),
        "dataPrevista": parse_date(record.get("data_prevista"), "data_prevista"),
        "nomeCliente": parse_text(record.get("nome"), "nome", 300),
        "valor": parse_money(record.get("valor"), "valor"),
        "idVendedor": parse_optional_id(record.get("id_vendedor"), "id_vendedor"),
        "nomeVendedor": parse_text(record.get("nome_vendedor"), "nome_vendedor", 200),
        "situacao": parse_text(record.get("situacao"), "situacao", 60),
        "codigoRastreamento": parse_text(
            record.get("codigo_rastreamento"), "codigo_rastreamento", 100
        ),
    }
    fingerprint = "\x1f".join(str(row[f]) for f in _LIST_FIELDS)
    row["listFingerprint"] = hashlib.md5(fingerprint.encode()).hexdigest()
    return row


def map_order(
    company_id: str, record: dict[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """A listing record to a SalesOrder row; raises BadValue for a value it cannot store."""
    now = now or utcnow()
    return {
        "companyId": company_id,
        "tinyId": parse_id(record.get("id")),
        **order_columns(record),
        "needsEnrichment": True,
        "syncedAt": now,
        "listedAt": now,
        "deletedAt": None,  # Tiny serves it: it exists
    }


def listing_view(detail: dict[str, Any]) -> dict[str, Any]:
    """An order's detail (`pedido.obter.php`) in the shape of its listing record."""
    cliente = detail.get("cliente")
    cliente = cliente if isinstance(cliente, dict) else {}
    valor = detail.get("valor", detail.get("total_pedido"))
    return {**detail, "nome": cliente.get("nome"), "valor": valor}


def correction(before: tuple[str | None, str | None] | None, row: dict[str, Any]) -> str | None:
    """What a newly read order corrects in the stored one: canceled, changed, or nothing."""
    if before is None or before[1] == row["listFingerprint"]:
        return None
    if row["situacao"] == CANCELED and before[0] != CANCELED:
        return "canceled"
    return "changed"


def flag_if_changed(excluded: Any) -> dict[str, Any]:
    # Keep an enriched order enriched unless its listing changed since.
    changed = or_(
        SalesOrder.listFingerprint.is_(None),
        SalesOrder.listFingerprint != excluded.listFingerprint,
    )
    return {"needsEnrichment": or_(changed, SalesOrder.needsEnrichment)}


Detail = tuple[dict[str, Any], list[dict[str, Any]]]


def map_detail(company_id: str, tiny_id: int, detail: dict[str, Any]) -> Detail:
    """An order's detail to its SalesOrder columns and item rows; raises BadValue."""
    cliente = detail.get("cliente")
    cliente = cliente if isinstance(cliente, dict) else {}
    values = {
        "dataFaturamento": parse_date(detail.get("data_faturamento"), "data_faturamento"),
        "cpfCnpj": parse_text(cliente.get("cpf_cnpj"), "cpf_cnpj", 30),
        "totalProdutos": parse_money(detail.get("total_produtos"), "total_produtos"),
        "totalPedido": parse_money(detail.get("total_pedido"), "total_pedido"),
        "valorDesconto": parse_money(detail.get("valor_desconto"), "valor_desconto"),
        "valorFrete": parse_money(detail.get("valor_frete"), "valor_frete"),
    }
    items = []
    for position, entry in enumerate(detail.get("itens") or [], start=1):
        item = entry.get("item", entry) if isinstance(entry, dict) else {}
        items.append(
            {
                "companyId": company_id,
                "orderTinyId": tiny_id,
                "position": position,
                "codigo": parse_text(item.get("codigo"), "codigo", 100),
                "descricao": parse_text(item.get("descricao"), "descricao", 500),
                "quantidade": parse_quantity(item.get("quantidade"), "quantidade"),
                "valorUnitario": parse_money(item.get("valor_unitario"), "valor_unitario"),
            }
        )
    return values, items


def map_details(
    company_id: str, details: dict[int, dict[str, Any] | None]
) -> tuple[dict[int, Detail], list[str]]:
    """Map each found order's detail; one set aside (a note) keeps what is stored."""
    mapped: dict[int, Detail] = {}
    notes = []
    for tiny_id, detail in details.items():
        if detail is None:
            continue
        try:
            mapped[tiny_id] = map_detail(company_id, tiny_id, detail)
        except BadValue as exc:
            notes.append(set_aside_note("pedido", tiny_id, exc, what="detalhe"))
    return mapped, notes


def write_orders(
    session: Session,
    company_id: str,
    updates: dict[int, dict[str, Any]],
    items: dict[int, list[dict[str, Any]]],
) -> None:
    """Update stored orders by Tiny id; the orders in `items` get exactly those items."""
    for tiny_id, values in updates.items():
        session.execute(
            update(SalesOrder)
            .where(SalesOrder.companyId == company_id, SalesOrder.tinyId == tiny_id)
            .values(**values)
        )
    if items:
        session.execute(
            delete(SalesOrderItem).where(
                SalesOrderItem.companyId == company_id,
                SalesOrderItem.orderTinyId.in_(list(items)),
            )
        )
    rows = [item for order_items in items.values() for item in order_items]
    if rows:
        upsert(session, SalesOrderItem, rows, key=("companyId", "orderTinyId", "position"))
