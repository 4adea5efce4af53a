"""`tests.support.truth.mismatches` finds every kind of difference from Tiny, and none on a
faithful copy: a synced database corrupted on purpose, one way per record."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, update

from core.models import Payable, Receivable, SalesOrder, StockItem, utcnow
from core.runs import create_run, start_run
from tests.support.services import fast_spec, new_company, step_until_done
from tests.support.truth import mismatches

TOKEN = "tok-mismatches"


def _synced(services, sandbox) -> tuple[str, date, date]:
    """A company whose whole account (60 days) a period run copied; its window."""
    spec = fast_spec(orders=80, days=60, products=12, payables=40, receivables=40)
    company = new_company(services, sandbox, TOKEN, spec)
    end = utcnow().date()
    start = end - timedelta(days=70)
    with services.session_factory() as session:
        run = create_run(
            session,
            services.settings,
            company_id=company,
            mode="period",
            start_date=start.isoformat(),
            end_date=end.isoformat(),
        )
        start_run(session, run.id)
    assert step_until_done(services, run.id).status == "DONE"
    return company, start, end


def test_a_faithful_copy_has_no_mismatch(services, sandbox):
    company, start, end = _synced(services, sandbox)
    assert mismatches(services.session_factory, sandbox, TOKEN, company, start, end) == []
    with services.session_factory() as session:  # a session works as well as its factory
        assert mismatches(session, sandbox, TOKEN, company, start, end) == []


def test_each_kind_of_difference_is_one_readable_line(services, sandbox):
    company, start, end = _synced(services, sandbox)
    truth = sandbox.truth(TOKEN, start, end)
    orders = sorted(truth.orders)
    open_payables = sorted(
        b for b, row in truth.payables_open.items() if row["situacao"] == "aberto"
    )
    open_receivables = sorted(truth.receivables_open)
    products = sorted(truth.products)
    gone = datetime(2026, 1, 1, tzinfo=UTC)
    o = {o_id: truth.orders[o_id] for o_id in orders[:6]}
    o_situacao, o_valor, o_missing, o_marked, o_deleted, o_extra = orders[:5] + [9_999_001]
    p_paid, p_cancelled, p_deleted, p_saldo = open_payables[:4]
    r_paid = open_receivables[0]
    s_saldo, s_inactive, s_deleted, s_missing = products[:4]

    # In Tiny: business went on and the copy was not synced again.
    sandbox.delete_order(TOKEN, o_deleted)
    sandbox.pay_bill(TOKEN, p_paid)
    sandbox.pay_bill(TOKEN, r_paid)
    sandbox.cancel_bill(TOKEN, p_cancelled)
    sandbox.delete_bill(TOKEN, p_deleted)
    sandbox.set_product_situacao(TOKEN, s_inactive, "I")
    sandbox.set_product_situacao(TOKEN, s_deleted, "E")
    # Here: the copy went wrong.
    with services.session_factory() as session:
        mine = SalesOrder.companyId == company
        session.execute(
            update(SalesOrder).where(mine, SalesOrder.tinyId == o_situacao).values(situacao="Xyz")
        )
        session.execute(
            update(SalesOrder)
            .where(mine, SalesOrder.tinyId == o_valor)
            .values(valor=o[o_valor]["valor"] + 1)
        )
        session.execute(delete(SalesOrder).where(mine, SalesOrder.tinyId == o_missing))
        session.execute(
            update(SalesOrder).where(mine, SalesOrder.tinyId == o_marked).values(deletedAt=gone)
        )
        session.add(
            SalesOrder(companyId=company, tinyId=o_extra, dataPedido=end, situacao="Aberto")
        )
        session.execute(
            update(Payable)
            .where(Payable.companyId == company, Payable.tinyId == p_saldo)
            .values(saldo=Decimal("0.01"))
        )
        session.add(  # open here, long before the window, and unknown to Tiny
            Receivable(
                companyId=company, tinyId=9_999_002, dataEmissao=date(2000, 1, 1), situacao="aberto"
            )
        )
        session.execute(
            update(StockItem)
            .where(StockItem.companyId == company, StockItem.tinyId == s_saldo)
            .values(saldo=Decimal("-7"))
        )
        session.execute(
            delete(StockItem).where(StockItem.companyId == company, StockItem.tinyId == s_missing)
        )
        session.commit()

    found = mismatches(services.session_factory, sandbox, TOKEN, company, start, end)

    valor = o[o_valor]["valor"]
    stock = truth.products[s_saldo]["saldo"].normalize()
    real_saldo = truth.payables_open[p_saldo]["saldo"].quantize(Decimal("0.01"))
    expected = {
        f"order {o_situacao}: here Xyz, Tiny {o[o_situacao]['situacao']}",
        f"order {o_valor}: here valor {valor + 1:.2f}, Tiny {valor:.2f}",
        f"order {o_missing}: here missing, Tiny {o[o_missing]['situacao']}",
        f"order {o_marked}: here deleted, Tiny {o[o_marked]['situacao']}",
        f"order {o_deleted}: here current ({o[o_deleted]['situacao']}), Tiny deleted",
        f"order {o_extra}: here Aberto in the window, Tiny not in the window",
        f"payable {p_paid}: here aberto, Tiny pago",
        f"receivable {r_paid}: here {truth.receivables_open[r_paid]['situacao']}, Tiny pago",
        f"payable {p_cancelled}: here aberto, Tiny cancelada",
        f"payable {p_deleted}: here aberto, Tiny deleted",
        f"payable {p_saldo}: here saldo 0.01, Tiny {real_saldo}",
        "receivable 9999002: here aberto, Tiny unknown",
        f"product {s_saldo}: here saldo -7, Tiny {stock:f}",
        f"product {s_inactive}: here active, Tiny inactive",
        f"product {s_deleted}: here active, Tiny deleted",
        f"product {s_missing}: here missing, Tiny active",
    }
    assert set(found) == expected, sorted(found)
    assert len(found) == len(expected)  # one line per record
