"""Orders stay true (issue 10) on SQLite and PostgreSQL: deleted orders leave the totals,
cancelled ones stay as cancelled, shifting pages lose nothing, incremental code 21 narrows,
and the watermark is Tiny's clock, not ours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from core.models import SalesOrder, SyncRunLog, SyncWatermark
from core.reports import sales_report, today_in_brazil
from core.runs import create_run, get_run, start_run
from sandbox import Churn
from tests.support.services import fast_spec, new_company, step_until_done


def _last_month(today: date) -> tuple[str, date, date]:
    end = date(today.year, today.month, 1) - timedelta(days=1)
    start = date(end.year, end.month, 1)
    return f"{start:%Y-%m}", start, end


def _run(services, company_id: str, **inputs) -> str:
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company_id, **inputs)
        start_run(session, run.id)
    step_until_done(services, run.id)
    with services.session_factory() as session:
        assert get_run(session, run.id).status == "DONE", get_run(session, run.id).errorMessage
    return run.id


def _orders(services, company_id: str) -> dict[int, SalesOrder]:
    with services.session_factory() as session:
        rows = session.scalars(select(SalesOrder).where(SalesOrder.companyId == company_id))
        return {o.tinyId: o for o in rows}


def _vendas(services, run_id: str) -> dict:
    with services.session_factory() as session:
        return get_run(session, run_id).progressJson["modules"]["vw_vendas"]


def _messages(services, run_id: str) -> list[str]:
    with services.session_factory() as session:
        return list(session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id)))


def _sales(services, company_id: str, month: str):
    with services.session_factory() as session:
        return sales_report(session, company_id, month, today=today_in_brazil())


def test_an_order_deleted_in_tiny_leaves_the_sales_totals_after_the_next_period_run(
    services, sandbox
):
    company = new_company(services, sandbox, "tok-del")
    month, start, end = _last_month(today_in_brazil())
    _run(services, company, mode="period", month=month)
    truth = sandbox.truth("tok-del", start, end)
    sold = next(i for i, o in truth.orders.items() if o["situacao"] != "Cancelado")
    before = _sales(services, company, month)
    calls_before = sandbox.counters("tok-del").per_service["pedido.obter.php"]

    sandbox.delete_order("tok-del", sold)
    run_id = _run(services, company, mode="period", month=month)

    row = _orders(services, company)[sold]
    assert row.deletedAt is not None  # kept, marked: Tiny answered 32
    after = _sales(services, company, month)
    assert after.orders == before.orders - 1
    assert after.total == before.total - truth.orders[sold]["valor"]
    truth = sandbox.truth("tok-del", start, end)
    assert sold in truth.orders_deleted
    sold_now = [o["valor"] for o in truth.orders.values() if o["situacao"] != "Cancelado"]
    assert after.total == sum(sold_now)
    vendas = _vendas(services, run_id)
    assert vendas["verified"]["corrected"] == {"deleted": 1}
    assert vendas["verified"]["listed"] == len(truth.orders)
    assert vendas["rechecked"] == 1
    # The one re-read is the only pedido.obter call: nothing else changed, nothing re-enriched.
    assert sandbox.counters("tok-del").per_service["pedido.obter.php"] == calls_before + 1
    n = len(truth.orders)
    assert (
        f"Vendas verificadas: {n} no Tiny, {n} gravadas; 1 corrigido (1 excluído); "
        "1 relido por não vir mais na listagem"
    ) in _messages(services, run_id)


def test_a_cancelled_order_stays_stored_as_cancelled_and_out_of_the_sales(services, sandbox):
    company = new_company(services, sandbox, "tok-cancel")
    month, start, end = _last_month(today_in_brazil())
    _run(services, company, mode="period", month=month)
    truth = sandbox.truth("tok-cancel", start, end)
    order = next(i for i, o in truth.orders.items() if o["situacao"] != "Cancelado")
    before = _sales(services, company, month)

    sandbox.cancel_order("tok-cancel", order)
    run_id = _run(services, company, mode="period", month=month)

    row = _orders(services, company)[order]
    assert (row.situacao, row.deletedAt) == ("Cancelado", None)
    after = _sales(services, company, month)
    assert after.orders == before.orders - 1
    assert after.canceled_orders == before.canceled_orders + 1
    assert after.canceled_total == before.canceled_total + truth.orders[order]["valor"]
    assert _vendas(services, run_id)["verified"]["corrected"] == {"canceled": 1}


def test_orders_deleted_while_the_listing_runs_are_marked_and_the_rest_stays_current(
    services, sandbox
):
    # Three pages a month: a delete between page 1 and 2 moves an order of page 2 onto page 1,
    # so the first pass never serves it; the second pass does (the passes differ). Orders the
    # first pass served and Tiny deleted before the second are not served by the accepted
    # pass, so the same run re-reads them and marks them deleted.
    spec = fast_spec(orders=1200, days=120)
    company = new_company(services, sandbox, "tok-shift", spec)
    month, start, end = _last_month(today_in_brazil())
    _run(services, company, mode="period", month=month)
    sandbox.set_churn("tok-shift", Churn(at_calls=(2,), delete_orders=12, seed=7))
    run_id = _run(services, company, mode="period", month=month)
    sandbox.set_churn("tok-shift", None)

    truth = sandbox.truth("tok-shift", start, end)
    stored = _orders(services, company)
    marked = {i for i, o in stored.items() if o.deletedAt is not None}
    assert marked == set(truth.orders_deleted)
    assert marked, "no order of the window was deleted"
    for tiny_id, expected in truth.orders.items():
        assert stored[tiny_id].deletedAt is None
        assert stored[tiny_id].situacao == expected["situacao"]
    vendas = _vendas(services, run_id)
    assert vendas["verified"]["corrected"]["deleted"] == len(marked)
    # Only the deleted orders need a re-read: the accepted pass served every other one.
    assert vendas["rechecked"] == len(marked)

    _run(services, company, mode="period", month=month)
    stored = _orders(services, company)
    in_window = {i: o for i, o in stored.items() if start <= o.dataPedido <= end}
    assert {i for i, o in in_window.items() if o.deletedAt is None} == set(truth.orders)
    assert {i for i, o in in_window.items() if o.deletedAt} == set(truth.orders_deleted)


def test_an_order_added_inside_the_window_during_the_listing_is_stored(services, sandbox):
    spec = fast_spec(orders=1200, days=120)
    company = new_company(services, sandbox, "tok-add", spec)
    month, start, end = _last_month(today_in_brazil())
    # Added before page 2, dated on the window's last day: it lands on a page still to come.
    sandbox.set_churn("tok-add", Churn(at_calls=(2,), new_orders=1, new_orders_window=(end, end)))
    _run(services, company, mode="period", month=month)
    sandbox.set_churn("tok-add", None)

    (added,) = sandbox.changes("tok-add").ids["add_order"]
    truth = sandbox.truth("tok-add", start, end)
    assert added in truth.orders
    stored = _orders(services, company)
    assert {i for i, o in stored.items() if o.deletedAt is None} == set(truth.orders)
    assert stored[added].needsEnrichment is False


def test_an_incremental_listing_refused_with_code_21_narrows_by_order_date(services, sandbox):
    spec = fast_spec(orders=900, days=90, max_query_records=120)
    company = new_company(services, sandbox, "tok-inc21", spec)
    _run(services, company, mode="incremental")  # no watermark yet: the window, split
    with services.session_factory() as session:
        first_mark = session.get(SyncWatermark, (company, "vw_vendas")).syncedUntil
    today = today_in_brazil()
    window = sandbox.truth("tok-inc21", today - timedelta(days=60), today)
    changed = [i for i, o in window.orders.items() if o["situacao"] != "Cancelado"][::4][:150]
    for order_id in changed:
        sandbox.cancel_order("tok-inc21", order_id)
    refused = sandbox.counters("tok-inc21").by_code[21]
    known = set(_orders(services, company))  # the first run stored the last 30 days only
    # Tiny's Date header has whole seconds: two fast runs could share one. Its clock moves on
    # two seconds, so the second run's watermark must be later than the first's.
    sandbox.clock_skew = timedelta(seconds=2)

    run_id = _run(services, company, mode="incremental")

    assert sandbox.counters("tok-inc21").by_code[21] > refused  # the whole listing was refused
    stored = _orders(services, company)
    assert all(stored[i].situacao == "Cancelado" for i in changed)
    assert any("registros demais" in m and "em separado" in m for m in _messages(services, run_id))
    with services.session_factory() as session:
        assert session.get(SyncWatermark, (company, "vw_vendas")).syncedUntil > first_mark
    corrected = _vendas(services, run_id)["verified"]["corrected"]
    assert 0 < corrected["canceled"] == len(known & set(changed)) < len(changed)


def test_a_tiny_clock_ten_minutes_behind_loses_no_change(services, sandbox):
    sandbox.clock_skew = timedelta(minutes=-10)
    company = new_company(services, sandbox, "tok-skew")  # one page of orders a month
    # A change Tiny stamps right after the run's first listing call (call 1 is vw_vendas's
    # only listing page): by our clock it happened 10 minutes before the run started.
    sandbox.set_churn("tok-skew", Churn(at_calls=(2,), cancel_orders=1, seed=3))
    _run(services, company, mode="incremental")
    sandbox.set_churn("tok-skew", None)
    (cancelled,) = sandbox.changes("tok-skew").ids["cancel_order"]
    seen = _orders(services, company).get(cancelled)
    assert seen is None or seen.situacao != "Cancelado"  # the listing was read before it
    with services.session_factory() as session:
        mark = session.get(SyncWatermark, (company, "vw_vendas")).syncedUntil
    # Anchored on Tiny's clock (its Date header), not on ours.
    assert mark < datetime.now(UTC) - timedelta(minutes=9)

    _run(services, company, mode="incremental")
    assert _orders(services, company)[cancelled].situacao == "Cancelado"


def test_the_re_read_resumes_from_its_checkpoint_across_steps(db_url, sandbox):
    from tests.support.services import make_services, make_settings

    # A budget of zero ends every step after one page or batch: the re-read of 15 orders
    # (two batches) spans steps, and none is read twice.
    services = make_services(make_settings(db_url, sync_step_budget_seconds=0.0), sandbox)
    company = new_company(services, sandbox, "tok-steps")
    month, start, end = _last_month(today_in_brazil())
    _run(services, company, mode="period", month=month)
    gone = list(sandbox.truth("tok-steps", start, end).orders)[:15]
    for order_id in gone:
        sandbox.delete_order("tok-steps", order_id)
    reads = sandbox.counters("tok-steps").per_service["pedido.obter.php"]

    run_id = _run(services, company, mode="period", month=month)

    assert sandbox.counters("tok-steps").per_service["pedido.obter.php"] == reads + 15
    assert all(_orders(services, company)[i].deletedAt is not None for i in gone)
    assert _vendas(services, run_id)["verified"]["corrected"] == {"deleted": 15}
    services.close()
