"""Reports on the synced data, on SQLite and PostgreSQL: sales, open bills, stock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from core.errors import ValidationError
from core.models import Payable, Receivable, SalesOrder, StockItem
from core.reports import (
    month_of,
    open_bills_report,
    open_bills_view,
    sales_report,
    sales_view,
    stock_report,
    stock_view,
    today_in_brazil,
)
from core.runs import create_run, start_run
from tests.support.services import fast_spec, new_company, step_until_done

TODAY = date(2024, 12, 20)


def _company(services, sandbox, token: str) -> str:
    return new_company(services, sandbox, token, fast_spec(orders=0, products=0))


def _order(company: str, tiny_id: int, day: date, valor: str, situacao: str = "Entregue"):
    return SalesOrder(
        companyId=company,
        tinyId=tiny_id,
        dataPedido=day,
        valor=Decimal(valor),
        situacao=situacao,
        needsEnrichment=False,
    )


def _bill(model, company: str, tiny_id: int, due: date | None, valor: str, saldo, situacao):
    return model(
        companyId=company,
        tinyId=tiny_id,
        dataVencimento=due,
        valor=Decimal(valor),
        saldo=None if saldo is None else Decimal(saldo),
        situacao=situacao,
    )


def test_sales_are_summed_per_day_of_the_month_without_canceled_orders(services, sandbox):
    company = _company(services, sandbox, "tok-sales")
    other = _company(services, sandbox, "tok-other")
    with services.session_factory() as session:
        session.add_all(
            [
                _order(company, 1, date(2024, 11, 1), "100.10"),
                _order(company, 2, date(2024, 11, 1), "0.20"),
                _order(company, 3, date(2024, 11, 30), "49.99", "Em aberto"),
                _order(company, 4, date(2024, 11, 15), "999.00", "Cancelado"),
                _order(company, 5, date(2024, 10, 31), "7.00"),  # the month before
                _order(company, 6, date(2024, 12, 1), "8.00"),  # the month after
                _order(other, 7, date(2024, 11, 2), "500.00"),  # another company
            ]
        )
        session.commit()
        report = sales_report(session, company, "2024-11", today=TODAY)

    assert report.month == "2024-11"
    assert len(report.days) == 30
    assert [d.day for d in report.days] == [date(2024, 11, 1) + timedelta(n) for n in range(30)]
    assert (report.days[0].orders, report.days[0].total) == (2, Decimal("100.30"))
    assert (report.days[29].orders, report.days[29].total) == (1, Decimal("49.99"))
    assert (report.days[1].orders, report.days[1].total) == (0, Decimal("0.00"))
    assert report.orders == 3
    assert report.total == Decimal("150.29")
    assert report.average_ticket == Decimal("50.10")  # 150.29 / 3 = 50.0966…, half up
    assert (report.canceled_orders, report.canceled_total) == (1, Decimal("999.00"))
    for d in report.days:
        assert isinstance(d.total, Decimal)


def test_a_month_without_sales_has_zero_totals_and_no_division_by_zero(services, sandbox):
    company = _company(services, sandbox, "tok-empty")
    with services.session_factory() as session:
        report = sales_report(session, company, "2024-02", today=TODAY)
    assert len(report.days) == 29  # a leap year
    assert (report.orders, report.total, report.average_ticket) == (0, 0, Decimal("0.00"))


def test_a_malformed_or_future_month_is_refused(services, sandbox):
    company = _company(services, sandbox, "tok-bad-month")
    with services.session_factory() as session:
        with pytest.raises(ValidationError):
            sales_report(session, company, "2024-13", today=TODAY)
        with pytest.raises(ValidationError):
            sales_report(session, company, "2025-01", today=TODAY)


def test_open_bills_are_grouped_by_due_date_with_overdue_flagged(services, sandbox):
    company = _company(services, sandbox, "tok-bills")
    with services.session_factory() as session:
        session.add_all(
            [
                _bill(Payable, company, 1, date(2024, 12, 1), "100.00", "100.00", "aberto"),
                _bill(Payable, company, 2, date(2024, 12, 1), "80.00", "30.50", "parcial"),
                _bill(Payable, company, 3, date(2024, 12, 20), "10.00", None, "aberto"),
                _bill(Payable, company, 4, date(2025, 1, 5), "70.00", "70.00", "aberto"),
                _bill(Payable, company, 5, date(2024, 11, 1), "55.00", "0.00", "pago"),
                _bill(Payable, company, 6, date(2024, 11, 2), "66.00", "66.00", "cancelada"),
                _bill(Receivable, company, 7, date(2024, 12, 1), "1.00", "1.00", "aberto"),
            ]
        )
        session.commit()
        report = open_bills_report(session, company, "payables", today=TODAY)
        receivables = open_bills_report(session, company, "receivables", today=TODAY)

    assert [(d.due, d.count, d.amount, d.overdue) for d in report.due_days] == [
        (date(2024, 12, 1), 2, Decimal("130.50"), True),
        (date(2024, 12, 20), 1, Decimal("10.00"), False),  # due today is not overdue yet
        (date(2025, 1, 5), 1, Decimal("70.00"), False),
    ]
    assert (report.count, report.amount) == (4, Decimal("210.50"))
    assert (report.overdue_count, report.overdue_amount) == (2, Decimal("130.50"))
    assert report.truncated is False
    assert (receivables.count, receivables.amount, receivables.overdue_count) == (
        1,
        Decimal("1.00"),
        1,
    )


def test_open_bills_listing_is_cut_at_the_limit_but_totals_cover_all(services, sandbox):
    company = _company(services, sandbox, "tok-many-bills")
    with services.session_factory() as session:
        session.add_all(
            _bill(Receivable, company, n, TODAY + timedelta(n), "1.00", "1.00", "aberto")
            for n in range(1, 6)
        )
        session.commit()
        report = open_bills_report(session, company, "receivables", today=TODAY, limit=2)
    assert len(report.due_days) == 2 and report.truncated
    assert (report.count, report.amount) == (5, Decimal("5.00"))


def test_an_unknown_bill_kind_is_a_programming_error(services, sandbox):
    company = _company(services, sandbox, "tok-kind")
    with services.session_factory() as session, pytest.raises(ValueError):
        open_bills_report(session, company, "invoices", today=TODAY)


def test_stock_lists_lowest_balances_first_and_flags_the_low_ones(services, sandbox):
    company = _company(services, sandbox, "tok-stock")

    def item(tiny_id, saldo, situacao="A"):
        return StockItem(
            companyId=company,
            tinyId=tiny_id,
            codigo=f"SKU-{tiny_id}",
            nome=f"Produto {tiny_id}",
            unidade="UN",
            situacao=situacao,
            saldo=None if saldo is None else Decimal(saldo),
            saldoReservado=Decimal("1"),
        )

    with services.session_factory() as session:
        session.add_all(
            [
                item(1, "40"),
                item(2, "0"),
                item(3, "5"),
                item(4, "5.5"),
                item(5, "-2"),
                item(6, "1", situacao="I"),  # inactive: not in the report
                item(7, None),  # balance not synced yet
            ]
        )
        session.commit()
        report = stock_report(session, company, threshold=Decimal("5"))
        cut = stock_report(session, company, limit=2)

    assert [(line.tiny_id, line.saldo, line.low) for line in report.lines] == [
        (5, Decimal("-2"), True),
        (2, Decimal("0"), True),
        (3, Decimal("5"), True),
        (4, Decimal("5.5"), False),
        (1, Decimal("40"), False),
    ]
    assert (report.products, report.low_count, report.zero_count) == (5, 3, 2)
    assert not report.truncated
    assert [line.tiny_id for line in cut.lines] == [5, 2] and cut.truncated
    assert cut.products == 5


def test_views_are_json_ready_with_money_as_decimal_strings(services, sandbox):
    company = _company(services, sandbox, "tok-json")
    with services.session_factory() as session:
        session.add(_order(company, 1, date(2024, 11, 3), "12.30"))
        session.add(_bill(Payable, company, 2, date(2024, 11, 3), "9.99", "9.99", "aberto"))
        session.commit()
        sales = sales_view(sales_report(session, company, "2024-11", today=TODAY))
        bills = open_bills_view(open_bills_report(session, company, "payables", today=TODAY))
        stock = stock_view(stock_report(session, company))
    assert sales["total"] == "12.30" and sales["averageTicket"] == "12.30"
    assert sales["days"][2] == {"date": "2024-11-03", "orders": 1, "total": "12.30"}
    assert bills["dueDays"] == [
        {"dueDate": "2024-11-03", "count": 1, "amount": "9.99", "overdue": True}
    ]
    assert bills["overdueAmount"] == "9.99"
    assert stock == {
        "threshold": "5",
        "products": 0,
        "lowCount": 0,
        "zeroCount": 0,
        "truncated": False,
        "lines": [],
    }


def test_today_is_the_brasilia_date():
    late_evening_in_brazil = datetime(2024, 12, 21, 2, 30, tzinfo=UTC)
    assert today_in_brazil(late_evening_in_brazil) == date(2024, 12, 20)
    assert month_of(date(2024, 3, 9)) == "2024-03"


def test_reports_after_a_real_sync_match_the_sandbox_truth(services, sandbox):
    spec = fast_spec(
        orders=240, days=90, products=20, payables=60, receivables=60, rate_limit_calls=10_000
    )
    company = new_company(services, sandbox, "tok-truth-reports", spec)
    today = today_in_brazil()
    first = date(today.year, today.month, 1)
    start = date((first - timedelta(1)).year, (first - timedelta(1)).month, 1)
    end = first - timedelta(1)
    with services.session_factory() as session:
        run = create_run(
            session, services.settings, company_id=company, mode="period", month=month_of(start)
        )
        start_run(session, run.id)
    assert step_until_done(services, run.id).status == "DONE"
    truth = sandbox.truth("tok-truth-reports", start, end)

    with services.session_factory() as session:
        sales = sales_report(session, company, month_of(start), today=today)
        payables = open_bills_report(session, company, "payables", today=today)
        stock = stock_report(session, company, limit=1000)

    sold = [o for o in truth.orders.values() if o["situacao"] != "Cancelado"]
    assert sales.orders == len(sold) > 0
    assert sales.total == sum((o["valor"] for o in sold), Decimal("0"))
    for day in sales.days:
        expected = [o["valor"] for o in sold if o["data_pedido"] == day.day]
        assert (day.orders, day.total) == (len(expected), sum(expected, Decimal("0.00")))
    # The open position is whole: every bill still owed, whatever its emission date.
    assert payables.count == len(truth.payables_open_all)
    assert payables.amount == sum(
        (b["saldo"] for b in truth.payables_open_all.values()), Decimal("0.00")
    )
    overdue = [b for b in truth.payables_open_all.values() if b["data_vencimento"] < today]
    assert payables.overdue_count == len(overdue)
    assert stock.products == len(truth.products)
    assert {line.tiny_id: line.saldo for line in stock.lines} == {
        pid: p["saldo"] for pid, p in truth.products.items()
    }


def test_reports_leave_out_what_tiny_deleted_and_what_is_not_current(services, sandbox):
    company = _company(services, sandbox, "tok-truthful")
    gone = datetime(2024, 11, 20, 12, tzinfo=UTC)

    def product(tiny_id: int, saldo: str, situacao: str = "A", deleted: bool = False):
        return StockItem(
            companyId=company,
            tinyId=tiny_id,
            nome=f"Produto {tiny_id}",
            situacao=situacao,
            saldo=Decimal(saldo),
            deletedAt=gone if deleted else None,
        )

    deleted_order = _order(company, 2, date(2024, 11, 5), "500.00")
    deleted_order.deletedAt = gone
    deleted_canceled = _order(company, 4, date(2024, 11, 5), "70.00", "Cancelado")
    deleted_canceled.deletedAt = gone
    deleted_bills = []
    for model in (Payable, Receivable):
        bill = _bill(model, company, 12, date(2024, 12, 1), "80.00", "80.00", "aberto")
        bill.deletedAt = gone
        deleted_bills.append(bill)
    with services.session_factory() as session:
        session.add_all(
            [
                _order(company, 1, date(2024, 11, 5), "10.00"),
                deleted_order,
                _order(company, 3, date(2024, 11, 5), "30.00", "Cancelado"),
                deleted_canceled,
                *[
                    bill
                    for model in (Payable, Receivable)
                    for bill in (
                        _bill(model, company, 11, date(2024, 12, 1), "20.00", "20.00", "aberto"),
                        _bill(model, company, 13, date(2024, 12, 1), "40.00", "40.00", "cancelada"),
                        _bill(model, company, 14, date(2024, 12, 1), "50.00", "0.00", "pago"),
                        _bill(model, company, 15, date(2024, 12, 2), "60.00", "15.00", "parcial"),
                    )
                ],
                *deleted_bills,
                product(21, "3"),
                product(22, "1", situacao="I"),
                product(23, "2", situacao="E"),
                product(24, "4", deleted=True),
            ]
        )
        session.commit()
        sales = sales_report(session, company, "2024-11", today=TODAY)
        bills = {
            kind: open_bills_report(session, company, kind, today=TODAY)
            for kind in ("payables", "receivables")
        }
        stock = stock_report(session, company)

    assert (sales.orders, sales.total) == (1, Decimal("10.00"))
    assert (sales.canceled_orders, sales.canceled_total) == (1, Decimal("30.00"))
    assert sales.days[4].orders == 1
    for kind, report in bills.items():
        assert (report.count, report.amount) == (2, Decimal("35.00")), kind
        assert [(d.due, d.count) for d in report.due_days] == [
            (date(2024, 12, 1), 1),
            (date(2024, 12, 2), 1),
        ], kind
    assert [line.tiny_id for line in stock.lines] == [21]
    assert (stock.products, stock.low_count) == (1, 1)
