"""The open position is whole: listings that shift lose nothing, and what Tiny changed is
corrected — on SQLite and PostgreSQL, with the sandbox as Tiny."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from core.models import Payable, SyncRun, SyncRunLog, utcnow
from core.modules import base
from core.modules.paging import LISTING_KEPT_MOVING
from core.modules.vw_contas_pagar import MODULE as PAGAR
from core.runs import create_run, get_run, start_run
from core.steps import run_step
from sandbox import Churn
from tests.support.services import fast_spec, make_services, make_settings, new_company

LIST = "contas.pagar.pesquisa.php"
DETAIL = "conta.pagar.obter.php"


def _start(services, company: str) -> str:
    with services.session_factory() as session:
        run = create_run(
            session,
            services.settings,
            company_id=company,
            mode="period",
            month=f"{date.today():%Y-%m}",
            modules=[PAGAR.key],
        )
        start_run(session, run.id)
        return run.id


def _step_until_done(services, run_id: str) -> None:
    for _ in range(200):
        result = run_step(
            services.session_factory,
            services.settings,
            services.client,
            run_id,
            modules=(PAGAR,),
        )
        if not result.has_more:
            assert result.status == "DONE"
            return
    raise AssertionError("the run never finished")


def _sync(services, company: str) -> str:
    run_id = _start(services, company)
    _step_until_done(services, run_id)
    return run_id


def _stored_open(services, company: str) -> dict[int, Payable]:
    with services.session_factory() as session:
        rows = session.scalars(
            select(Payable).where(
                Payable.companyId == company,
                Payable.situacao.in_(("aberto", "parcial")),
                Payable.deletedAt.is_(None),
            )
        )
        return {row.tinyId: row for row in rows}


def _entry(services, run_id: str) -> dict:
    with services.session_factory() as session:
        return get_run(session, run_id).progressJson["modules"][PAGAR.key]


def _messages(services, run_id: str) -> list[str]:
    with services.session_factory() as session:
        return list(session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id)))


def _pay_between_pages(monkeypatch, sandbox, token: str, crash_at: int | None = None):
    """Before the open listing's page 2 is first asked, pay a bill its page 1 served.

    With `crash_at`, the executor dies (a BaseException, as a killed worker) instead of making
    that listing call. Returns the paid bill's id (in a list, once known).
    """
    original = base.ModuleContext.list_page
    paid: list[int] = []
    calls: list[int] = []

    class Crash(BaseException):
        pass

    def list_page(self, service, list_key, item_key, params, page):
        if service == LIST and params.get("situacao") == "aberto":
            calls.append(page)
            if crash_at is not None and len(calls) == crash_at:
                raise Crash()
            if page == 2 and not paid:
                first = original(self, service, list_key, item_key, params, 1).records
                paid.append(int(first[0]["id"]))
                sandbox.pay_bill(token, paid[0])
        return original(self, service, list_key, item_key, params, page)

    monkeypatch.setattr(base.ModuleContext, "list_page", list_page)
    return paid, Crash


def test_a_bill_paid_between_two_pages_of_the_open_listing_loses_no_other(
    db_url, sandbox, monkeypatch
):
    services = make_services(make_settings(db_url), sandbox)
    company = new_company(services, sandbox, "tok-shift", fast_spec(payables=1000))
    assert len(sandbox.open_bills("tok-shift", "pagar")) > 200  # three pages at least
    paid, _ = _pay_between_pages(monkeypatch, sandbox, "tok-shift")
    run_id = _sync(services, company)

    assert paid
    open_now = sandbox.open_bills("tok-shift", "pagar")
    stored = _stored_open(services, company)
    assert set(stored) == set(open_now)
    for tiny_id, bill in open_now.items():
        assert (stored[tiny_id].situacao, stored[tiny_id].saldo) == (
            bill["situacao"],
            bill["saldo"],
        )
    with services.session_factory() as session:
        bill = session.scalar(select(Payable).where(Payable.tinyId == paid[0]))
        assert (bill.situacao, bill.saldo) == ("pago", Decimal("0.00"))
    entry = _entry(services, run_id)
    # The paid bill was served by pass 1 only; the re-read found it paid.
    assert entry["verified"]["corrected"] == {"paid": 1}
    assert entry["verified"]["listed"] == len(open_now)  # the accepted pass, once per bill
    assert entry["processed"] == len(open_now)
    assert entry["verified"]["unconfirmed"] == []
    messages = _messages(services, run_id)
    # Pass 2 differs from pass 1 (the paid bill is gone), so a third pass confirms the second.
    assert any("lendo de novo (passagem 3)" in m for m in messages)
    assert any(m.startswith("Contas a pagar verificadas:") and "(1 pago)" in m for m in messages)
    services.close()


def test_after_a_crash_mid_listing_the_takeover_still_stores_the_whole_open_set(
    db_url, sandbox, monkeypatch
):
    services = make_services(make_settings(db_url), sandbox)
    company = new_company(services, sandbox, "tok-crash", fast_spec(payables=1000))
    # The executor dies asking for the third open-listing page (after paying a bill of page 1).
    paid, crash = _pay_between_pages(monkeypatch, sandbox, "tok-crash", crash_at=3)
    run_id = _start(services, company)
    with pytest.raises(crash):
        run_step(
            services.session_factory, services.settings, services.client, run_id, modules=(PAGAR,)
        )
    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.leaseOwner is not None and run.checkpointJson[PAGAR.key]["page"] == 3
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(leaseExpiresAt=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    _step_until_done(services, run_id)

    assert set(_stored_open(services, company)) == set(sandbox.open_bills("tok-crash", "pagar"))
    with services.session_factory() as session:
        assert get_run(session, run_id).resumeCount == 1
        bill = session.scalar(select(Payable).where(Payable.tinyId == paid[0]))
        assert bill.situacao == "pago"
    assert any("Contas a pagar retomado do ponto salvo" in m for m in _messages(services, run_id))
    services.close()


@pytest.mark.parametrize("open_includes_partial", [True, False])
def test_bills_changed_in_tiny_outside_any_window_are_corrected_by_the_next_run(
    db_url, sandbox, open_includes_partial
):
    services = make_services(make_settings(db_url), sandbox)
    token = f"tok-fix-{open_includes_partial}"
    spec = fast_spec(payables=400, days=400, open_includes_partial=open_includes_partial)
    company = new_company(services, sandbox, token, spec)
    _sync(services, company)
    assert set(_stored_open(services, company)) == set(sandbox.open_bills(token, "pagar"))

    # The oldest open bills (emitted about a year ago: in no run's window) change in Tiny.
    oldest = sorted(
        (b for b in sandbox.open_bills(token, "pagar").values() if b["situacao"] == "aberto"),
        key=lambda b: b["data_emissao"],
    )[:4]
    paid, partly, canceled, deleted = (b["id"] for b in oldest)
    sandbox.pay_bill(token, paid)
    amount = sandbox.partly_pay_bill(token, partly)
    sandbox.cancel_bill(token, canceled)
    sandbox.delete_bill(token, deleted)
    details_before = sandbox.counters(token).per_service.get(DETAIL, 0)
    run_id = _sync(services, company)

    open_now = sandbox.open_bills(token, "pagar")
    stored = _stored_open(services, company)
    assert set(stored) == set(open_now)
    assert (stored[partly].situacao, stored[partly].saldo) == (
        "parcial",
        oldest[1]["saldo"] - amount,
    )
    with services.session_factory() as session:
        rows = {
            r.tinyId: r
            for r in session.scalars(
                select(Payable).where(Payable.tinyId.in_((paid, canceled, deleted)))
            )
        }
    assert (rows[paid].situacao, rows[paid].saldo, rows[paid].deletedAt) == (
        "pago",
        Decimal("0.00"),
        None,
    )
    assert rows[canceled].situacao == "cancelada" and rows[canceled].deletedAt is None
    assert rows[deleted].deletedAt is not None and rows[deleted].situacao == "aberto"
    # Only the three bills no listing served were re-read; the partly paid one was listed.
    assert sandbox.counters(token).per_service[DETAIL] - details_before == 3
    entry = _entry(services, run_id)
    assert entry["verified"]["corrected"] == {"paid": 1, "canceled": 1, "deleted": 1}
    assert entry["rechecked"] == 3
    services.close()


def test_a_one_page_position_costs_one_listing_call(sqlite_url, sandbox):
    services = make_services(make_settings(sqlite_url), sandbox)
    company = new_company(services, sandbox, "tok-one", fast_spec(payables=80))
    open_now = sandbox.open_bills("tok-one", "pagar")
    assert 0 < len(open_now) <= 100
    assert any(b["situacao"] == "parcial" for b in open_now.values())
    _sync(services, company)
    # One page, complete at once; aberto served the partly paid bills, so no parcial listing.
    assert sandbox.counters("tok-one").per_service[LIST] == 1
    assert set(_stored_open(services, company)) == set(open_now)
    services.close()


def test_a_listing_that_keeps_moving_past_the_cap_says_so(sqlite_url, sandbox):
    services = make_services(make_settings(sqlite_url, sync_listing_max_passes=2), sandbox)
    company = new_company(services, sandbox, "tok-moving", fast_spec(payables=1000))
    # Before every call a bill is paid somewhere in the account: no two passes agree.
    sandbox.set_churn("tok-moving", Churn(every_calls=1, pay_bills=1, seed=3))
    run_id = _sync(services, company)
    sandbox.set_churn("tok-moving", None)

    entry = _entry(services, run_id)
    assert entry["status"] == "done"
    assert entry["verified"]["unconfirmed"] == [LISTING_KEPT_MOVING]
    assert any("ainda mudava após 2 passagens" in m for m in _messages(services, run_id))
    services.close()


def test_an_open_position_tiny_refuses_whole_is_listed_by_emission_date_parts(db_url, sandbox):
    services = make_services(make_settings(db_url), sandbox)
    spec = fast_spec(payables=1000, max_query_records=100)
    company = new_company(services, sandbox, "tok-parts", spec)
    assert len(sandbox.open_bills("tok-parts", "pagar")) > 100  # code 21 for the whole
    _sync(services, company)
    # A bill paid after the first run is found again by the re-read of its part's window.
    first_open = sorted(sandbox.open_bills("tok-parts", "pagar"))[0]
    sandbox.pay_bill("tok-parts", first_open)
    run_id = _sync(services, company)

    assert set(_stored_open(services, company)) == set(sandbox.open_bills("tok-parts", "pagar"))
    assert sandbox.counters("tok-parts").by_code[21] >= 2
    assert _entry(services, run_id)["verified"]["corrected"] == {"paid": 1}
    assert any("registros demais" in m for m in _messages(services, run_id))
    services.close()
