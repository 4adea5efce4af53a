"""What a correct copy of an account holds right now, in Python types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sandbox.account import OPEN_BILL, Account

ORDER_LIST_FIELDS = (
    "id",
    "numero",
    "numero_ecommerce",
    "data_pedido",
    "data_prevista",
    "nome",
    "valor",
    "id_vendedor",
    "nome_vendedor",
    "situacao",
    "codigo_rastreamento",
)
BILL_LIST_FIELDS = (
    "id",
    "nome_cliente",
    "historico",
    "numero_doc",
    "data_vencimento",
    "data_emissao",
    "valor",
    "saldo",
    "situacao",
)
ITEM_FIELDS = ("codigo", "descricao", "quantidade", "valor_unitario")


@dataclass
class Truth:
    """The current state of an account for a date window, plus what no window bounds.

    Window fields (by order date / bill emission date): `orders` (current situacao, deleted
    ones absent), `orders_deleted`, `*_open` (aberto and parcial), `*_paid`, `*_cancelled`,
    `*_deleted`. Whole-account fields: `*_open_all` (every bill still owed, whatever its
    emission date), `products` (active, with current balance), `products_inactive`,
    `products_deleted` (situacao E) and `planted` (record id -> {field: odd value served}).
    Records with planted values stay in their groups with their true values.
    """

    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    order_items: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    payables_open: dict[int, dict[str, Any]] = field(default_factory=dict)
    payables_paid: dict[int, dict[str, Any]] = field(default_factory=dict)
    receivables_open: dict[int, dict[str, Any]] = field(default_factory=dict)
    receivables_paid: dict[int, dict[str, Any]] = field(default_factory=dict)
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders_deleted: dict[int, dict[str, Any]] = field(default_factory=dict)
    payables_cancelled: dict[int, dict[str, Any]] = field(default_factory=dict)
    receivables_cancelled: dict[int, dict[str, Any]] = field(default_factory=dict)
    payables_deleted: dict[int, dict[str, Any]] = field(default_factory=dict)
    receivables_deleted: dict[int, dict[str, Any]] = field(default_factory=dict)
    payables_open_all: dict[int, dict[str, Any]] = field(default_factory=dict)
    receivables_open_all: dict[int, dict[str, Any]] = field(default_factory=dict)
    products_inactive: dict[int, dict[str, Any]] = field(default_factory=dict)
    products_deleted: dict[int, dict[str, Any]] = field(default_factory=dict)
    planted: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready copy: decimals as strings, dates ISO, ids as object keys."""

        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        return {name: plain(getattr(self, name)) for name in self.__dataclass_fields__}


def _order_row(account: Account, i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    record = account.order(i)
    items = [{f: item[f] for f in ITEM_FIELDS} for item in record["itens"]]
    return {f: record[f] for f in ORDER_LIST_FIELDS}, items


def bill_row(kind: str, bill: dict[str, Any]) -> dict[str, Any]:
    """A bill as its listing shows it, in Python types."""
    extra = ("numero_banco", "serie_doc") if kind == "receber" else ()
    return {f: bill[f] for f in (*BILL_LIST_FIELDS, *extra)}


def open_bills(account: Account, kind: str) -> dict[int, dict[str, Any]]:
    """Every bill of `kind` still owed (aberto or parcial), whatever its emission date."""
    with account.lock:
        rows = (account.bill(kind, i) for i in account.select_bills(kind, None, None))
        return {b["id"]: bill_row(kind, b) for b in rows if b["situacao"] in OPEN_BILL}


def product_row(product: dict[str, Any]) -> dict[str, Any]:
    """A product with its current balance, in Python types."""
    return {
        "id": product["id"],
        "codigo": product["codigo"],
        "nome": product["nome"],
        "unidade": product["unidade"],
        "preco": product["preco"],
        "saldo": product["saldo"],
        "saldo_reservado": product["saldo_reservado"],
    }


def build_truth(account: Account, start: date, end: date) -> Truth:
    """Everything a correct sync of [start, end] must hold, as the account stands now."""
    truth = Truth()
    with account.lock:
        for i in account.select_orders(start, end):
            row, items = _order_row(account, i)
            truth.orders[row["id"]] = row
            truth.order_items[row["id"]] = items
        for i in account.deleted_orders:
            if start <= account.order(i)["data_pedido"] <= end:
                row, _ = _order_row(account, i)
                truth.orders_deleted[row["id"]] = row
        for kind, prefix in (("pagar", "payables"), ("receber", "receivables")):
            groups = {
                "aberto": getattr(truth, f"{prefix}_open"),
                "parcial": getattr(truth, f"{prefix}_open"),
                "pago": getattr(truth, f"{prefix}_paid"),
                "cancelada": getattr(truth, f"{prefix}_cancelled"),
            }
            for i in account.select_bills(kind, start, end):
                bill = account.bill(kind, i)
                groups[bill["situacao"]][bill["id"]] = bill_row(kind, bill)
            deleted = getattr(truth, f"{prefix}_deleted")
            for i in account.deleted_bills[kind]:
                bill = account.bill(kind, i)
                if start <= bill["data_emissao"] <= end:
                    deleted[bill["id"]] = bill_row(kind, bill)
            getattr(truth, f"{prefix}_open_all").update(open_bills(account, kind))
        by_situacao = {
            "A": truth.products,
            "I": truth.products_inactive,
            "E": truth.products_deleted,
        }
        for j in range(account.product_count):
            product = account.product(j)
            by_situacao[product["situacao"]][product["id"]] = product_row(product)
        truth.planted = {k: dict(v) for k, v in account.planted.items()}
    return truth
