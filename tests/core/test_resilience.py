"""Cancel, lease takeover and resume from checkpoints, concurrent steps, rate limits."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from core.models import SalesOrder, SyncRun, SyncRunLog, utcnow
from core.runs import cancel_run, create_run, get_run, start_run
from core.steps import run_step
from sandbox import Faults
from tests.support.services import (
    fast_spec,
    make_services,
    make_settings,
    new_company,
    step_until_done,
)


def _start(services, company: str, mode: str = "period", **kw) -> str:
    with services.session_factory() as session:
        if mode == "period" and "month" not in kw:
            today = date.today()
            kw.update(
                start_date=(today - timedelta(days=59)).isoformat(), end_date=today.isoformat()
            )
        run = create_run(session, services.settings, company_id=company, mode=mode, **kw)
        start_run(session, run.id)
        return run.id


def test_cancel_between_two_pages_stops_before_the_next_tiny_call(services, sandbox):
    company = new_company(services, sandbox, "tok-cancel", fast_spec(orders=2000, days=60))
    run_id = _start(services, company)
    calls_at_cancel: list[int] = []
    original_commit = None

    # Cancel from "another request" right after the first sales page is committed.
    from core.modules import base

    original_commit = base.ModuleContext.commit

    def commit_then_cancel(self, *args, **kwargs):
        original_commit(self, *args, **kwargs)
        if self.module == "vw_vendas" and self.checkpoint.get("page") == 2 and not calls_at_cancel:
            with services.session_factory() as session:
                cancel_run(session, run_id)
            calls_at_cancel.append(sandbox.counters("tok-cancel").calls)

    base.ModuleContext.commit = commit_then_cancel
    try:
        result = run_step(services.session_factory, services.settings, services.client, run_id)
    finally:
        base.ModuleContext.commit = original_commit

    assert calls_at_cancel, "the cancel hook never ran"
    assert sandbox.counters("tok-cancel").calls == calls_at_cancel[0]
    assert result.status == "CANCELED" and result.has_more is False
    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.status == "CANCELED"
        assert run.progressJson["modules"]["vw_vendas"]["status"] == "canceled"
        assert run.progressJson["modules"]["vw_estoque"]["status"] == "canceled"
        assert run.progressJson["modules"]["vw_vendas"]["processed"] == 100
        kept = session.scalar(select(func.count()).select_from(SalesOrder))
        assert kept == 100  # what was written before the cancel stays
        messages = session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id))
        assert any("parou antes da próxima chamada ao Tiny" in m for m in messages)
    # Later steps do nothing and the run stays CANCELED.
    again = run_step(services.session_factory, services.settings, services.client, run_id)
    assert again.status == "CANCELED" and again.executed is None
    assert sandbox.counters("tok-cancel").calls == calls_at_cancel[0]


def test_a_canceled_run_never_turns_done(services, sandbox):
    company = new_company(services, sandbox, "tok-never")
    run_id = _start(services, company)
    with services.session_factory() as session:
        cancel_run(session, run_id)
    result = step_until_done(services, run_id)
    assert result.status == "CANCELED"
    from core.runs import finalize_run

    with services.session_factory() as session:
        assert finalize_run(session, run_id).status == "CANCELED"


def test_an_abandoned_step_is_resumed_from_its_checkpoint_without_loss_or_duplicates(
    db_url, sandbox
):
    services = make_services(make_settings(db_url, sync_lease_seconds=30.0), sandbox)
    company = new_company(services, sandbox, "tok-lease", fast_spec(orders=1500, days=60))
    run_id = _start(services, company)

    # A step that dies after three pages: stop it by making its fourth listing call raise.
    from core.modules import base

    original = base.ModuleContext.list_page
    pages: list[int] = []

    class Crash(BaseException):
        pass

    def dying_list_page(self, service, list_key, item_key, params, page):
        if service == "pedidos.pesquisa.php":
            pages.append(page)
            if len(pages) == 4:
                raise Crash()
        return original(self, service, list_key, item_key, params, page)

    base.ModuleContext.list_page = dying_list_page
    try:
        try:
            run_step(services.session_factory, services.settings, services.client, run_id)
        except Crash:
            pass
    finally:
        base.ModuleContext.list_page = original

    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.leaseOwner is not None  # the dead executor still "holds" it
        assert run.checkpointJson["vw_vendas"]["page"] == 4
        assert run.progressJson["modules"]["vw_vendas"]["processed"] == 300

    # While the lease is live, another step does nothing.
    idle = run_step(services.session_factory, services.settings, services.client, run_id)
    assert idle.executed is None

    # Let the lease expire, then the next step takes over from page 4.
    with services.session_factory() as session:
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(leaseExpiresAt=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    calls_before = sandbox.counters("tok-lease").per_service.get("pedidos.pesquisa.php", 0)
    result = step_until_done(services, run_id)
    assert result.status == "DONE"
    today = date.today()
    truth = sandbox.truth("tok-lease", today - timedelta(days=59), today)
    with services.session_factory() as session:
        stored = session.scalars(select(SalesOrder.tinyId)).all()
        assert sorted(stored) == sorted(truth.orders)
        run = get_run(session, run_id)
        assert run.resumeCount == 1
        assert run.progressJson["modules"]["vw_vendas"]["processed"] == len(truth.orders)
        messages = session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id))
        assert any("Vendas retomado do ponto salvo (list, página 4)" in m for m in messages)
    listing_calls = sandbox.counters("tok-lease").per_service["pedidos.pesquisa.php"] - calls_before
    total_pages = -(-len(truth.orders) // 100)
    # Pages 1-3 of the first pass were not fetched again; then the second pass reads all
    # pages once to confirm nothing moved ("two passes agree", see core.modules.paging).
    assert listing_calls == (total_pages - 3) + total_pages
    services.close()


def test_two_callers_stepping_the_same_run_at_once_never_duplicate_work(services, sandbox):
    company = new_company(services, sandbox, "tok-race", fast_spec(orders=450, days=60))
    run_id = _start(services, company)
    errors: list[BaseException] = []

    def stepper():
        try:
            step_until_done(services, run_id, max_steps=2000)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=stepper) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    today = date.today()
    truth = sandbox.truth("tok-race", today - timedelta(days=59), today)
    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.status == "DONE"
        assert run.progressJson["modules"]["vw_vendas"]["processed"] == len(truth.orders)
        assert session.scalar(select(func.count()).select_from(SalesOrder)) == len(truth.orders)
    listing = sandbox.counters("tok-race").per_service["pedidos.pesquisa.php"]
    # Each page once per pass, and two passes (the second confirms nothing moved): no page
    # was fetched twice in a pass by the racing callers.
    assert listing == 2 * -(-len(truth.orders) // 100)


def test_transient_faults_are_retried_and_the_data_is_still_exact(db_url, sandbox):
    services = make_services(make_settings(db_url, tiny_max_retries=6), sandbox)
    company = new_company(services, sandbox, "tok-flaky", fast_spec(orders=600, days=60))
    sandbox.set_faults(
        "tok-flaky", Faults(p_5xx=0.08, p_code35=0.08, p_timeout=0.05, p_malformed=0.05, seed=7)
    )
    run_id = _start(services, company)
    result = step_until_done(services, run_id)
    assert result.status == "DONE", result.progress
    counters = sandbox.counters("tok-flaky")
    assert sum(counters.faults.values()) > 0
    today = date.today()
    truth = sandbox.truth("tok-flaky", today - timedelta(days=59), today)
    with services.session_factory() as session:
        assert sorted(session.scalars(select(SalesOrder.tinyId)).all()) == sorted(truth.orders)
        retries = session.scalar(
            select(func.count())
            .select_from(SyncRunLog)
            .where(SyncRunLog.runId == run_id, SyncRunLog.message.like("%; nova tentativa em %"))
        )
        assert retries == sum(counters.faults.values())
    services.close()


def test_at_the_configured_interval_the_sandbox_never_answers_code_6(sqlite_url, sandbox):
    # 10 calls per 0.5 s allowed; the client spaces calls by 60 ms (at most ~8.3 per 0.5 s).
    services = make_services(
        make_settings(sqlite_url, tiny_min_interval_ms=60, tiny_max_enrich_per_run=30), sandbox
    )
    company = new_company(
        services,
        sandbox,
        "tok-paced",
        fast_spec(
            orders=400, days=60, products=10, rate_limit_calls=10, rate_limit_window_seconds=0.5
        ),
    )
    run_id = _start(services, company)
    assert step_until_done(services, run_id).status == "DONE"
    counters = sandbox.counters("tok-paced")
    assert counters.calls >= 30
    assert counters.rate_limit_violations == 0
    services.close()


def test_without_pacing_the_sandbox_limits_and_the_client_backs_off(sqlite_url, sandbox):
    services = make_services(
        make_settings(
            sqlite_url,
            tiny_min_interval_ms=0,
            tiny_max_retries=10,
            tiny_rate_limit_backoff_seconds=0.3,
            tiny_max_enrich_per_run=30,
        ),
        sandbox,
    )
    company = new_company(
        services,
        sandbox,
        "tok-burst",
        fast_spec(
            orders=300, days=60, products=10, rate_limit_calls=5, rate_limit_window_seconds=0.25
        ),
    )
    run_id = _start(services, company)
    assert step_until_done(services, run_id).status == "DONE"
    assert sandbox.counters("tok-burst").rate_limit_violations > 0
    with services.session_factory() as session:
        messages = session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id))
        assert any("código 6" in m for m in messages)
    services.close()


def test_a_back_off_longer_than_the_step_pauses_the_step_instead_of_blocking_it(
    sqlite_url, sandbox
):
    services = make_services(
        make_settings(
            sqlite_url,
            tiny_min_interval_ms=0,
            tiny_max_retries=10,
            tiny_rate_limit_backoff_seconds=0.6,
            sync_step_budget_seconds=0.3,
            tiny_max_enrich_per_run=5,
        ),
        sandbox,
    )
    company = new_company(
        services,
        sandbox,
        "tok-pause",
        fast_spec(
            orders=300, days=60, products=3, rate_limit_calls=3, rate_limit_window_seconds=0.5
        ),
    )
    run_id = _start(services, company)
    paused = None
    for _ in range(500):
        result = run_step(services.session_factory, services.settings, services.client, run_id)
        if result.retry_after_seconds:
            paused = result
            break
    assert paused is not None and paused.status == "RUNNING"
    assert 0 < paused.retry_after_seconds <= 0.6
    # Until the wait is over, a step makes no Tiny call.
    calls = sandbox.counters("tok-pause").calls
    again = run_step(services.session_factory, services.settings, services.client, run_id)
    assert again.executed is None and again.retry_after_seconds
    assert sandbox.counters("tok-pause").calls == calls
    time.sleep(paused.retry_after_seconds)
    assert step_until_done(services, run_id).status == "DONE"
    with services.session_factory() as session:
        messages = session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id))
        assert any("aguardando o limite do Tiny" in m and "código 6" in m for m in messages)
    services.close()


def test_a_database_outage_mid_module_is_retried_later_instead_of_failing_the_module(
    services, sandbox
):
    from sqlalchemy.exc import OperationalError

    from core.modules import MODULES

    company = new_company(services, sandbox, "tok-db-outage", fast_spec(orders=50, days=60))
    run_id = _start(services, company)

    class CutAfterFirstPage:
        key = "vw_vendas"

        def run(self, ctx):
            ctx.commit()  # a page went through, then the connection is cut
            raise OperationalError("UPDATE ...", {}, Exception("terminating connection"))

    cut = (CutAfterFirstPage(), *MODULES[1:])
    with pytest.raises(OperationalError):
        run_step(services.session_factory, services.settings, services.client, run_id, modules=cut)
    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.progressJson["modules"]["vw_vendas"]["status"] == "running"
        assert run.leaseOwner is None  # given back: the retry need not wait for the lease
        assert not session.scalar(
            select(func.count()).where(SyncRunLog.runId == run_id, SyncRunLog.level == "error")
        )

    assert step_until_done(services, run_id).status == "DONE"
