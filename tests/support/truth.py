"""Is the local copy what Tiny says? `mismatches` compares a company's rows with the sandbox.

One short line per record that differs, e.g. "payable 123: here aberto, Tiny pago". What is
compared (issue 10, "Truthful copy"):

- orders of the window (`dataPedido`): each current one stored, not marked deleted, with
  Tiny's situacao and valor; each deleted one, if stored, marked deleted; no stored current
  order of the window that Tiny does not have there;
- bills of the window (emission date): each open or paid one stored with Tiny's situacao (and
  saldo when open); each cancelled or deleted one, if stored, shown so;
- the open position, whatever the date: the stored open payables and receivables (not deleted,
  situacao aberto/parcial) are exactly `sandbox.open_bills()`;
- products: each active one stored as active with Tiny's balance; inactive and deleted ones,
  if stored, not active here.

Records with a planted odd value are left out: the run sets them aside and says so in its
verification, which is the truthful answer for them. Used by the tests and `bench.drift`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Payable, Receivable, SalesOrder, StockItem
from sandbox import Sandbox, Truth

OPEN = ("aberto", "parcial")
ALL_DATES = (date(1900, 1, 1), date(2999, 12, 31))
BILL_KINDS: tuple[tuple[str, str, type[Payable] | type[Receivable]], ...] = (
    ("payable", "pagar", Payable),
    ("receivable", "receber", Receivable),
)

SessionSource = Session | Callable[[], Session]


@contextmanager
def _session(source: SessionSource) -> Iterator[Session]:
    if isinstance(source, Session):
        with nullcontext(source):
            yield source
        return
    with source() as session:
        yield session


class _Found:
    """Mismatch lines, at most one per record (the first one found)."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, int], str] = {}

    def add(self, what: str, tiny_id: int, here: str, tiny: str) -> None:
        self.lines.setdefault((what, tiny_id), f"{what} {tiny_id}: here {here}, Tiny {tiny}")


def _money(value: Any) -> str:
    return "none" if value is None else str(Decimal(value).quantize(Decimal("0.01")))


def _quantity(value: Any) -> str:
    return "none" if value is None else format(Decimal(value).normalize(), "f")


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return Decimal(a) == Decimal(b)


def _orders(
    session: Session, truth: Truth, company_id: str, start: date, end: date, found: _Found
) -> None:
    stored = {
        row.tinyId: row
        for row in session.scalars(select(SalesOrder).where(SalesOrder.companyId == company_id))
    }
    for tiny_id, order in truth.orders.items():
        if tiny_id in truth.planted:
            continue
        row = stored.get(tiny_id)
        situacao = order["situacao"]
        if row is None:
            found.add("order", tiny_id, "missing", situacao)
        elif row.deletedAt is not None:
            found.add("order", tiny_id, "deleted", situacao)
        elif row.situacao != situacao:
            found.add("order", tiny_id, str(row.situacao), situacao)
        elif not _same(row.valor, order["valor"]):
            found.add("order", tiny_id, f"valor {_money(row.valor)}", _money(order["valor"]))
    for tiny_id in truth.orders_deleted:
        row = stored.get(tiny_id)
        if row is not None and row.deletedAt is None:
            found.add("order", tiny_id, f"current ({row.situacao})", "deleted")
    for tiny_id, row in stored.items():
        in_window = row.dataPedido is not None and start <= row.dataPedido <= end
        if in_window and row.deletedAt is None and tiny_id not in truth.orders:
            if tiny_id not in truth.orders_deleted and tiny_id not in truth.planted:
                found.add("order", tiny_id, f"{row.situacao} in the window", "not in the window")


def _bill_groups(truth: Truth, prefix: str) -> dict[str, dict[int, dict[str, Any]]]:
    return {
        "open": getattr(truth, f"{prefix}_open"),
        "paid": getattr(truth, f"{prefix}_paid"),
        "cancelled": getattr(truth, f"{prefix}_cancelled"),
        "deleted": getattr(truth, f"{prefix}_deleted"),
    }


def _tiny_situacao(groups: dict[str, dict[int, dict[str, Any]]], tiny_id: int) -> str:
    if tiny_id in groups["deleted"]:
        return "deleted"
    for name in ("open", "paid", "cancelled"):
        if tiny_id in groups[name]:
            return str(groups[name][tiny_id]["situacao"])
    return "unknown"


def _bills(
    session: Session,
    sandbox: Sandbox,
    token: str,
    window: Truth,
    whole: Truth,
    company_id: str,
    found: _Found,
) -> None:
    for what, kind, model in BILL_KINDS:
        prefix = f"{what}s"
        rows: list[Any] = list(session.scalars(select(model).where(model.companyId == company_id)))
        stored = {row.tinyId: row for row in rows}

        def here(row: Any) -> str:
            if row is None:
                return "missing"
            return "deleted" if row.deletedAt is not None else str(row.situacao)

        groups = _bill_groups(window, prefix)
        for group in ("open", "paid"):
            for tiny_id, bill in groups[group].items():
                if tiny_id in window.planted:
                    continue
                row = stored.get(tiny_id)
                if row is None or row.deletedAt is not None or row.situacao != bill["situacao"]:
                    found.add(what, tiny_id, here(row), bill["situacao"])
                elif group == "open" and not _same(row.saldo, bill["saldo"]):
                    found.add(what, tiny_id, f"saldo {_money(row.saldo)}", _money(bill["saldo"]))
        for tiny_id, bill in groups["cancelled"].items():
            row = stored.get(tiny_id)
            if row is not None and row.deletedAt is None and row.situacao != bill["situacao"]:
                found.add(what, tiny_id, here(row), bill["situacao"])
        for tiny_id in groups["deleted"]:
            row = stored.get(tiny_id)
            if row is not None and row.deletedAt is None:
                found.add(what, tiny_id, here(row), "deleted")
        # The open position, whatever the emission date.
        tiny_open = sandbox.open_bills(token, kind)
        here_open = {
            tiny_id
            for tiny_id, row in stored.items()
            if row.deletedAt is None and row.situacao in OPEN
        }
        everywhere = _bill_groups(whole, prefix)
        for tiny_id in sorted(here_open - tiny_open.keys()):
            if tiny_id not in whole.planted:
                found.add(what, tiny_id, here(stored[tiny_id]), _tiny_situacao(everywhere, tiny_id))
        for tiny_id in sorted(tiny_open.keys() - here_open):
            if tiny_id not in whole.planted:
                found.add(what, tiny_id, here(stored.get(tiny_id)), tiny_open[tiny_id]["situacao"])


def _products(session: Session, truth: Truth, company_id: str, found: _Found) -> None:
    stored = {
        row.tinyId: row
        for row in session.scalars(select(StockItem).where(StockItem.companyId == company_id))
    }

    def active(row: StockItem) -> bool:
        return row.deletedAt is None and row.situacao in (None, "A")

    for tiny_id, product in truth.products.items():
        if tiny_id in truth.planted:
            continue
        row = stored.get(tiny_id)
        if row is None:
            found.add("product", tiny_id, "missing", "active")
        elif not active(row):
            found.add(
                "product",
                tiny_id,
                "deleted" if row.deletedAt else f"situacao {row.situacao}",
                "active",
            )
        elif not _same(row.saldo, product["saldo"]):
            here, tiny = _quantity(row.saldo), _quantity(product["saldo"])
            found.add("product", tiny_id, f"saldo {here}", tiny)
    for tiny_id in truth.products_inactive:
        row = stored.get(tiny_id)
        if row is not None and active(row):
            found.add("product", tiny_id, "active", "inactive")
    for tiny_id in truth.products_deleted:
        row = stored.get(tiny_id)
        if row is not None and active(row):
            found.add("product", tiny_id, "active", "deleted")


def mismatches(
    source: SessionSource,
    sandbox: Sandbox,
    token: str,
    company_id: str,
    start: date,
    end: date,
) -> list[str]:
    """Every way the company's copy differs from Tiny for [start, end] and the open position."""
    window = sandbox.truth(token, start, end)
    whole = sandbox.truth(token, *ALL_DATES)
    found = _Found()
    with _session(source) as session:
        _orders(session, window, company_id, start, end, found)
        _bills(session, sandbox, token, window, whole, company_id, found)
        _products(session, window, company_id, found)
    return list(found.lines.values())
