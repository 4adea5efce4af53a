"""Reports on the synced data: sales of a month, open bills by due date, stock balances.

Every query takes the session and a company id, aggregates in the database (the same SQL on
SQLite and PostgreSQL), and returns plain dataclasses with `Decimal` money, so the web page,
the JSON routes and the tests read the same numbers.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.models import (
    MONEY,
    QUANTITY,
    Payable,
    Receivable,
    SalesOrder,
    StockItem,
    money_sum,
    stored_decimal,
    utcnow,
)
from core.runs import parse_month

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
#: Tiny keeps its dates in Brasília time; Brazil has had no daylight saving since 2019.
BRASILIA = timezone(timedelta(hours=-3), "BRT")
#: Orders in this situation are not sales.
CANCELED_ORDER = "Cancelado"
#: Bills still (partly) unpaid; `saldo` is what remains.
OPEN_BILL_SITUATIONS = ("aberto", "parcial")
DEFAULT_LOW_STOCK_THRESHOLD = Decimal("5")
DEFAULT_STOCK_LIMIT = 200
DEFAULT_BILL_DAYS_LIMIT = 120


def today_in_brazil(now: datetime | None = None) -> date:
    """Today's date in Brasília, the calendar Tiny's due dates and order dates use."""
    return (now or utcnow()).astimezone(BRASILIA).date()


def month_of(day: date) -> str:
    """`YYYY-MM` of a date."""
    return f"{day.year:04d}-{day.month:02d}"


def _money(value: Any) -> Decimal:
    # Sums arrive exact (models.money_sum); what is not a finite number counts as nothing.
    amount = stored_decimal(value)
    if amount is None:
        return ZERO
    with localcontext() as ctx:
        ctx.prec = 60
        return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _quantity(value: Any) -> Decimal:
    amount = stored_decimal(value)
    if amount is None:
        return Decimal("0")
    with localcontext() as ctx:
        ctx.prec = 60
        return amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP).normalize()


# -- sales ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DaySales:
    """Sales of one day: how many orders and their total."""

    day: date
    orders: int
    total: Decimal


@dataclass(frozen=True)
class SalesReport:
    """A month of sales: one entry per calendar day (zeros included) and the totals."""

    month: str
    start: date
    end: date
    days: list[DaySales]
    orders: int
    total: Decimal
    average_ticket: Decimal
    canceled_orders: int
    canceled_total: Decimal


def sales_report(session: Session, company_id: str, month: str, *, today: date) -> SalesReport:
    """Sales per day of `month` (`YYYY-MM`), excluding canceled orders, with totals.

    The amount of an order is its listed `valor` (the order total Tiny shows, freight and
    discount included); the average ticket is the total over the number of orders.
    """
    window = parse_month(month, today)
    in_month = and_(
        SalesOrder.companyId == company_id,
        SalesOrder.dataPedido >= window.start,
        SalesOrder.dataPedido <= window.end,
    )
    not_canceled = or_(SalesOrder.situacao.is_(None), SalesOrder.situacao != CANCELED_ORDER)
    total_col = func.coalesce(money_sum(SalesOrder.valor), 0, type_=MONEY)
    per_day = session.execute(
        select(SalesOrder.dataPedido, func.count(SalesOrder.id), total_col)
        .where(in_month, not_canceled)
        .group_by(SalesOrder.dataPedido)
        .order_by(SalesOrder.dataPedido)
    ).all()
    by_day = {row[0]: (int(row[1]), _money(row[2])) for row in per_day}
    days = []
    for n in range(calendar.monthrange(window.start.year, window.start.month)[1]):
        day = window.start + timedelta(days=n)
        count, total = by_day.get(day, (0, ZERO))
        days.append(DaySales(day=day, orders=count, total=total))
    orders = sum(d.orders for d in days)
    total = sum((d.total for d in days), ZERO)
    canceled = session.execute(
        select(func.count(SalesOrder.id), total_col).where(
            in_month, SalesOrder.situacao == CANCELED_ORDER
        )
    ).one()
    average = (total / orders).quantize(CENT, rounding=ROUND_HALF_UP) if orders else ZERO
    return SalesReport(
        month=month_of(window.start),
        start=window.start,
        end=window.end,
        days=days,
        orders=orders,
        total=total,
        average_ticket=average,
        canceled_orders=int(canceled[0]),
        canceled_total=_money(canceled[1]),
    )


# -- open bills -------------------------------------------------------------------------
@dataclass(frozen=True)
class DueDay:
    """Open bills falling due on one day; `overdue` when that day is already past."""

    due: date | None
    count: int
    amount: Decimal
    overdue: bool


@dataclass(frozen=True)
class OpenBillsReport:
    """A company's open payables or receivables, grouped by due date (earliest first)."""

    kind: str  # "payables" | "receivables"
    today: date
    due_days: list[DueDay]
    count: int
    amount: Decimal
    overdue_count: int
    overdue_amount: Decimal
    #: True when `due_days` was cut at the limit (the totals still cover every bill).
    truncated: bool


def open_bills_report(
    session: Session,
    company_id: str,
    kind: str,
    *,
    today: date,
    limit: int = DEFAULT_BILL_DAYS_LIMIT,
) -> OpenBillsReport:
    """Open (`aberto`/`parcial`) payables or receivables by due date, overdue ones flagged.

    The open amount of a bill is its `saldo` (what remains after partial payments), or its
    `valor` when Tiny sent no balance.
    """
    model: type[Payable] | type[Receivable]
    if kind == "payables":
        model = Payable
    elif kind == "receivables":
        model = Receivable
    else:
        raise ValueError(f"unknown bill kind {kind!r}: use 'payables' or 'receivables'")
    is_open = and_(model.companyId == company_id, model.situacao.in_(OPEN_BILL_SITUATIONS))
    amount = func.coalesce(money_sum(func.coalesce(model.saldo, model.valor)), 0, type_=MONEY)
    rows = list(
        session.execute(
            select(model.dataVencimento, func.count(model.id), amount)
            .where(is_open)
            .group_by(model.dataVencimento)
            .order_by(model.dataVencimento.is_(None), model.dataVencimento)
        ).all()
    )
    days = [
        DueDay(
            due=row[0],
            count=int(row[1]),
            amount=_money(row[2]),
            overdue=row[0] is not None and row[0] < today,
        )
        for row in rows
    ]
    overdue = [d for d in days if d.overdue]
    return OpenBillsReport(
        kind=kind,
        today=today,
        due_days=days[: max(0, limit)],
        count=sum(d.count for d in days),
        amount=sum((d.amount for d in days), ZERO),
        overdue_count=sum(d.count for d in overdue),
        overdue_amount=sum((d.amount for d in overdue), ZERO),
        truncated=len(days) > limit,
    )


# -- stock ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StockLine:
    """One product's balance; `low` when at or under the threshold."""

    tiny_id: int
    codigo: str | None
    nome: str | None
    unidade: str | None
    saldo: Decimal
    reservado: Decimal
    low: bool


@dataclass(frozen=True)
class StockReport:
    """Active products, lowest balance first, with how many are low or out of stock."""

    threshold: Decimal
    products: int
    low_count: int
    zero_count: int
    lines: list[StockLine]
    #: True when `lines` was cut at the limit (the counts still cover every product).
    truncated: bool


def stock_report(
    session: Session,
    company_id: str,
    *,
    threshold: Decimal = DEFAULT_LOW_STOCK_THRESHOLD,
    limit: int = DEFAULT_STOCK_LIMIT,
) -> StockReport:
    """Stock of active products whose balance is known, lowest first; low at `threshold`."""
    known = and_(
        StockItem.companyId == company_id,
        StockItem.saldo.is_not(None),
        or_(StockItem.situacao.is_(None), StockItem.situacao == "A"),
        StockItem.deletedAt.is_(None),
    )
    saldo = func.coalesce(StockItem.saldo, 0, type_=QUANTITY)
    counts = session.execute(
        select(
            func.count(StockItem.id),
            func.coalesce(func.sum(case((StockItem.saldo <= threshold, 1), else_=0)), 0),
            func.coalesce(func.sum(case((StockItem.saldo <= 0, 1), else_=0)), 0),
        ).where(known)
    ).one()
    rows = session.scalars(
        select(StockItem).where(known).order_by(saldo, StockItem.nome, StockItem.id).limit(limit)
    ).all()
    lines = [
        StockLine(
            tiny_id=item.tinyId,
            codigo=item.codigo,
            nome=item.nome,
            unidade=item.unidade,
            saldo=_quantity(item.saldo),
            reservado=_quantity(item.saldoReservado),
            low=_quantity(item.saldo) <= threshold,
        )
        for item in rows
    ]
    products = int(counts[0])
    return StockReport(
        threshold=threshold,
        products=products,
        low_count=int(counts[1]),
        zero_count=int(counts[2]),
        lines=lines,
        truncated=products > len(lines),
    )


# -- JSON -------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def sales_view(report: SalesReport) -> dict[str, Any]:
    """The JSON of a sales report (camelCase, money as decimal strings)."""
    return {
        "month": report.month,
        "startDate": _plain(report.start),
        "endDate": _plain(report.end),
        "orders": report.orders,
        "total": _plain(report.total),
        "averageTicket": _plain(report.average_ticket),
        "canceledOrders": report.canceled_orders,
        "canceledTotal": _plain(report.canceled_total),
        "days": [
            {"date": _plain(d.day), "orders": d.orders, "total": _plain(d.total)}
            for d in report.days
        ],
    }


def open_bills_view(report: OpenBillsReport) -> dict[str, Any]:
    """The JSON of an open bills report."""
    return {
        "kind": report.kind,
        "today": _plain(report.today),
        "count": report.count,
        "amount": _plain(report.amount),
        "overdueCount": report.overdue_count,
        "overdueAmount": _plain(report.overdue_amount),
        "truncated": report.truncated,
        "dueDays": [
            {
                "dueDate": _plain(d.due),
                "count": d.count,
                "amount": _plain(d.amount),
                "overdue": d.overdue,
            }
            for d in report.due_days
        ],
    }


def stock_view(report: StockReport) -> dict[str, Any]:
    """The JSON of a stock report."""
    return {
        "threshold": _plain(report.threshold),
        "products": report.products,
        "lowCount": report.low_count,
        "zeroCount": report.zero_count,
        "truncated": report.truncated,
        "lines": [
            {
                "tinyId": line.tiny_id,
                "codigo": line.codigo,
                "nome": line.nome,
                "unidade": line.unidade,
                "saldo": _plain(line.saldo),
                "reservado": _plain(line.reservado),
                "low": line.low,
            }
            for line in report.lines
        ],
    }
