"""Stock stays true (issue 10): the consume-on-read queue, rolling re-checks, products that left.

Every test runs the stock module alone, on SQLite and PostgreSQL, against the sandbox, whose
`lista.atualizacoes.estoque` empties as it is read, like Tiny's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from core.models import StockItem, SyncRun, SyncRunLog, SyncWatermark, utcnow
from core.modules import base
from core.modules.vw_estoque import MODULE as STOCK
from core.modules.vw_estoque import UPDATES_SERVICE, recheck_plan
from core.reports import stock_report
from core.runs import create_run, get_run, start_run
from core.steps import run_step
from sandbox import Churn, Sandbox
from tests.support.services import fast_spec, make_services, make_settings, new_company

KEY = "vw_estoque"
BRASILIA = ZoneInfo("America/Sao_Paulo")


def _start(services, company: str, mode: str = "incremental") -> str:
    with services.session_factory() as session:
        kw = {}
        if mode == "period":
            kw = {"start_date": date.today().isoformat(), "end_date": date.today().isoformat()}
        run = create_run(
            session, services.settings, company_id=company, mode=mode, modules=[KEY], **kw
        )
        start_run(session, run.id)
        return run.id


def _step(services, run_id: str):
    return run_step(
        services.session_factory, services.settings, services.client, run_id, modules=(STOCK,)
    )


def _step_until_done(services, run_id: str) -> None:
    for _ in range(100):
        if not _step(services, run_id).has_more:
            return
    raise AssertionError(f"run {run_id} still has work")


def _run(services, company: str, mode: str = "incremental") -> dict:
    """One run of the stock module to its end; its progress entry."""
    run_id = _start(services, company, mode)
    _step_until_done(services, run_id)
    return _entry(services, run_id)


def _entry(services, run_id: str) -> dict:
    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.status == "DONE", run.errorMessage
        return run.progressJson["modules"][KEY] | {"runId": run_id}


def _rows(services, company: str) -> dict[int, StockItem]:
    with services.session_factory() as session:
        rows = session.scalars(select(StockItem).where(StockItem.companyId == company)).all()
        session.expunge_all()
        return {r.tinyId: r for r in rows}


def _active_balances(services, company: str) -> dict[int, Decimal]:
    return {
        i: r.saldo
        for i, r in _rows(services, company).items()
        if r.deletedAt is None and r.situacao in (None, "A")
    }


def _truth_balances(sandbox: Sandbox, token: str) -> dict[int, Decimal]:
    today = date.today()
    return {k: v["saldo"] for k, v in sandbox.truth(token, today, today).products.items()}


def test_the_rolling_recheck_goes_round_every_product_within_the_max_age():
    # 24 h, runs every 30 min: 48 runs a day; a balance must be re-read within 23.5 h.
    assert recheck_plan(10_000, 30, 24) == (213, timedelta(hours=23, minutes=30))
    assert recheck_plan(27, 30, 2) == (9, timedelta(minutes=90))
    assert recheck_plan(27, 0, 24) == (0, timedelta(hours=24))  # no beat: only the old ones
    assert recheck_plan(27, 60, 1) == (27, timedelta(0))  # a bound under the beat: all


def test_250_stock_changes_are_all_applied_reading_the_queue_from_page_one(db_url, sandbox):
    # No rolling re-check (beat 0): what the run gets right, the queue alone gave it.
    services = make_services(make_settings(db_url, sync_beat_interval_minutes=0), sandbox)
    company = new_company(services, sandbox, "tok-queue", fast_spec(products=400))
    first = _run(services, company)
    assert _active_balances(services, company) == _truth_balances(sandbox, "tok-queue")
    assert (
        first["verified"]["listed"]
        == first["verified"]["stored"]
        == len(_truth_balances(sandbox, "tok-queue"))
    )

    moved = sorted(_truth_balances(sandbox, "tok-queue"))[:250]
    for n, product_id in enumerate(moved):
        sandbox.move_stock("tok-queue", product_id, n % 7 + 1)
    # More moves while the queue is being read (calls 5 and 6: its second and third pages),
    # some of products already served: they come back to the queue and must be read again.
    sandbox.set_churn("tok-queue", Churn(at_calls=(5, 6), move_stock=20, seed=3))
    pages: list[int] = []
    original = base.ModuleContext.list_page

    def watching(self, service, list_key, item_key, params, page):
        if service == UPDATES_SERVICE:
            pages.append(page)
        return original(self, service, list_key, item_key, params, page)

    base.ModuleContext.list_page = watching
    try:
        second = _run(services, company)
    finally:
        base.ModuleContext.list_page = original
    sandbox.set_churn("tok-queue", None)

    assert _active_balances(services, company) == _truth_balances(sandbox, "tok-queue")
    assert pages and set(pages) == {1}  # never page 2: it would skip what was page 2
    assert len(pages) >= 3  # 250 changes are three pages of 100
    assert second["queued"] >= 250
    assert second.get("checked", 0) == 0  # nothing re-checked: the queue did it all


def test_a_queue_that_keeps_what_it_served_is_read_page_by_page_and_ends(db_url, sandbox):
    services = make_services(make_settings(db_url, sync_beat_interval_minutes=0), sandbox)
    spec = fast_spec(products=400, stock_updates_consume=False)
    company = new_company(services, sandbox, "tok-keeps", spec)
    _run(services, company)
    for n, product_id in enumerate(sorted(_truth_balances(sandbox, "tok-keeps"))[:250]):
        sandbox.move_stock("tok-keeps", product_id, n % 5 + 1)
    before = sandbox.counters("tok-keeps").per_service[UPDATES_SERVICE]
    second = _run(services, company)
    assert _active_balances(services, company) == _truth_balances(sandbox, "tok-keeps")
    # Page 1, page 1 again (served alike: this queue keeps its records), then pages 2 and 3.
    assert sandbox.counters("tok-keeps").per_service[UPDATES_SERVICE] - before == 4
    assert second["queued"] == 250


def test_a_tiny_clock_ten_minutes_behind_loses_no_stock_change(db_url):
    sandbox = Sandbox(clock_skew=timedelta(minutes=-10))
    services = make_services(make_settings(db_url, sync_beat_interval_minutes=0), sandbox)
    company = new_company(services, sandbox, "tok-late", fast_spec(products=40))
    _run(services, company)
    product_id = min(_truth_balances(sandbox, "tok-late"))
    sandbox.move_stock("tok-late", product_id, 9)  # stamped 10 min before our watermark
    _run(services, company)
    assert _active_balances(services, company) == _truth_balances(sandbox, "tok-late")


def _lose_the_next_queue_page(services, company: str) -> str:
    """Start a run whose executor dies right after Tiny served a queue page (so the page left
    the queue, but was never committed), then let another executor take the run over."""
    run_id = _start(services, company)
    original = base.ModuleContext.list_page

    class Crash(BaseException):
        pass

    def dying(self, service, list_key, item_key, params, page):
        served = original(self, service, list_key, item_key, params, page)
        if service == UPDATES_SERVICE and served.records:
            raise Crash()
        return served

    base.ModuleContext.list_page = dying
    try:
        with pytest.raises(Crash):
            _step(services, run_id)
    finally:
        base.ModuleContext.list_page = original
    with services.session_factory() as session:
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(leaseExpiresAt=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    _step_until_done(services, run_id)
    return run_id


def _checked_last(services, company: str) -> int:
    """The active product the rolling re-check reaches last."""
    rows = [
        r for r in _rows(services, company).values() if r.deletedAt is None and r.situacao == "A"
    ]
    return max(rows, key=lambda r: (r.stockCheckedAt, r.tinyId)).tinyId


def test_a_change_lost_from_the_queue_is_corrected_within_the_stated_bound(db_url, sandbox):
    # Max age 2 h, runs every 30 min: each run re-checks a third of the products (oldest
    # first), so any balance is re-read within 3 runs (90 min) of its last check.
    settings = make_settings(db_url, sync_stock_max_age_hours=2, sync_beat_interval_minutes=30)
    services = make_services(settings, sandbox)
    company = new_company(services, sandbox, "tok-lost", fast_spec(products=30))
    _run(services, company)
    active = len(_active_balances(services, company))
    quota, _ = recheck_plan(active, 30, 2)
    assert 2 * quota < active <= 3 * quota
    lost = _checked_last(services, company)
    sandbox.move_stock("tok-lost", lost, 11)
    truth = _truth_balances(sandbox, "tok-lost")

    second = _entry(services, _lose_the_next_queue_page(services, company))
    assert second["checked"] == quota
    assert _active_balances(services, company)[lost] == truth[lost] - 11  # lost for now
    third = _run(services, company)
    assert _active_balances(services, company)[lost] == truth[lost] - 11  # not its turn yet
    fourth = _run(services, company)
    assert _active_balances(services, company) == truth  # third run after its last check
    assert third["checked"] == fourth["checked"] == quota
    assert fourth["verified"]["corrected"] == {"moved": 1}
    with services.session_factory() as session:
        line = session.scalars(
            select(SyncRunLog.message).where(
                SyncRunLog.runId == fourth["runId"],
                SyncRunLog.message.like("Estoque verificado:%"),
            )
        ).one()
    assert "1 corrigido (1 saldo alterado)" in line and f"{quota} saldos conferidos" in line


def test_every_balance_older_than_the_max_age_is_rechecked_at_once(db_url, sandbox):
    services = make_services(make_settings(db_url), sandbox)  # 24 h, every 30 min
    company = new_company(services, sandbox, "tok-old", fast_spec(products=60))
    _run(services, company)
    lost = _checked_last(services, company)
    sandbox.move_stock("tok-old", lost, 5)
    _lose_the_next_queue_page(services, company)
    assert _active_balances(services, company) != _truth_balances(sandbox, "tok-old")
    # A day without runs: every balance is now older than the bound.
    with services.session_factory() as session:
        for row in session.scalars(select(StockItem)):
            row.stockCheckedAt -= timedelta(hours=24)
        session.commit()
    after = _run(services, company)
    assert _active_balances(services, company) == _truth_balances(sandbox, "tok-old")
    assert after["checked"] == len(_truth_balances(sandbox, "tok-old"))
    assert after["verified"]["corrected"] == {"moved": 1}


def test_deactivated_and_deleted_products_leave_the_active_set(db_url, sandbox):
    services = make_services(make_settings(db_url), sandbox)
    company = new_company(services, sandbox, "tok-gone", fast_spec(products=50))
    _run(services, company)
    inactive, deleted, kept = sorted(_truth_balances(sandbox, "tok-gone"))[:3]
    sandbox.set_product_situacao("tok-gone", inactive, "I")
    sandbox.set_product_situacao("tok-gone", deleted, "E")

    incremental = _run(services, company)
    rows = _rows(services, company)
    assert rows[inactive].situacao == "I" and rows[inactive].deletedAt is None
    assert rows[deleted].situacao == "E" and rows[deleted].deletedAt is not None
    assert rows[kept].situacao == "A"
    assert set(_active_balances(services, company)) == set(_truth_balances(sandbox, "tok-gone"))
    assert incremental["verified"]["corrected"] == {"deactivated": 1, "deleted": 1}
    with services.session_factory() as session:
        report = stock_report(session, company, limit=1000)
    assert {line.tiny_id for line in report.lines} == set(_truth_balances(sandbox, "tok-gone"))

    # Back in Tiny's active listing: active (and not deleted) again after a full run.
    sandbox.set_product_situacao("tok-gone", deleted, "A")
    again = _run(services, company, mode="period")
    assert _rows(services, company)[deleted].deletedAt is None
    assert set(_active_balances(services, company)) == set(_truth_balances(sandbox, "tok-gone"))
    assert "deleted" not in again["verified"].get("corrected", {})


def test_a_product_tiny_no_longer_has_is_marked_deleted_by_its_recheck(db_url, sandbox):
    services = make_services(make_settings(db_url), sandbox)
    company = new_company(services, sandbox, "tok-32", fast_spec(products=20))
    with services.session_factory() as session:  # a product stored long ago, gone since
        session.add(StockItem(companyId=company, tinyId=7, nome="Sumiu", situacao="A"))
        session.commit()
    full = _run(services, company, mode="period")
    ghost = _rows(services, company)[7]
    assert ghost.deletedAt is not None and ghost.stockCheckedAt is not None
    assert full["verified"]["corrected"] == {"deleted": 1}
    assert set(_active_balances(services, company)) == set(_truth_balances(sandbox, "tok-32"))


def test_a_product_created_at_22_30_in_brasilia_is_found_by_the_next_run(db_url, sandbox):
    services = make_services(make_settings(db_url), sandbox)
    company = new_company(services, sandbox, "tok-night", fast_spec(products=20))
    _run(services, company)
    # The last run started at 22:00 in Brasília yesterday (01:00 UTC today); a product was
    # created at 22:30 there: already "today" in UTC, still yesterday for Tiny's dataCriacao.
    yesterday = datetime.now(BRASILIA).date() - timedelta(days=1)
    last_run = datetime(yesterday.year, yesterday.month, yesterday.day, 22, tzinfo=BRASILIA)
    with services.session_factory() as session:
        session.execute(
            update(SyncWatermark)
            .where(SyncWatermark.companyId == company, SyncWatermark.module == KEY)
            .values(syncedUntil=last_run.astimezone(UTC))
        )
        session.commit()
    created = sandbox.add_product("tok-night", created_at=last_run + timedelta(minutes=30))
    assert created not in _rows(services, company)
    _run(services, company)
    row = _rows(services, company)[created]
    assert row.situacao == "A" and row.stockCheckedAt is not None
    assert row.saldo == _truth_balances(sandbox, "tok-night")[created]
