"""The acceptance of "Truthful copy": Tiny's data moves while runs page through it, an executor
dies mid-listing and another takes its lease over; once the changes stop, one incremental run
and one period run of the month leave the local copy equal to the sandbox's truth."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from core.models import SyncRun, utcnow
from core.modules import base
from core.reports import month_of, today_in_brazil
from core.runs import create_run, get_run, start_run
from core.steps import run_step
from sandbox import AccountSpec, Churn
from tests.support.services import make_services, make_settings, new_company, step_until_done
from tests.support.truth import mismatches

TOKEN = "tok-truth"


class Crash(BaseException):
    """The executor dies (a SIGKILL, as far as the database can tell)."""


def _month_before(today):
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def _start(services, company, **how) -> str:
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, **how)
        start_run(session, run.id)
        return run.id


def _crash_on_a_listing_page(services, run_id: str, service: str, page: int) -> None:
    """Step the run until its executor dies when asking `service` for `page`."""
    original = base.ModuleContext.list_page

    def dying(self, service_, list_key, item_key, params, number):
        if service_ == service and number == page:
            raise Crash()
        return original(self, service_, list_key, item_key, params, number)

    base.ModuleContext.list_page = dying
    try:
        for _ in range(500):
            try:
                run_step(services.session_factory, services.settings, services.client, run_id)
            except Crash:
                return
        raise AssertionError(f"{service} never asked for page {page}")
    finally:
        base.ModuleContext.list_page = original


def test_the_copy_equals_tiny_after_changes_a_crash_and_a_takeover(db_url, sandbox):
    services = make_services(make_settings(db_url, sync_lease_seconds=30.0), sandbox)
    start, end = _month_before(today_in_brazil())
    spec = AccountSpec(
        orders=600, days=90, products=40, payables=1200, receivables=1200, seed=11,
        rate_limit_calls=1_000_000, max_concurrent=1_000,
    )  # fmt: skip
    company = new_company(services, sandbox, TOKEN, spec)
    churn = Churn(
        every_calls=7, seed=11, pay_bills=1, partly_pay_bills=1, cancel_bills=1,
        delete_bills=1, cancel_orders=1, delete_orders=1, new_orders=1,
        new_orders_window=(start, end), move_stock=2, deactivate_products=1,
    )  # fmt: skip
    sandbox.set_churn(TOKEN, churn)
    try:
        first = _start(services, company, mode="period", month=month_of(start))
        # The executor dies in the middle of the sales listing ...
        _crash_on_a_listing_page(services, first, "pedidos.pesquisa.php", 2)
        with services.session_factory() as session:
            assert get_run(session, first).leaseOwner is not None
            session.execute(  # ... and its lease runs out: the next step takes over.
                update(SyncRun)
                .where(SyncRun.id == first)
                .values(leaseExpiresAt=utcnow() - timedelta(seconds=1))
            )
            session.commit()
        assert step_until_done(services, first, max_steps=5_000).status == "DONE"
    finally:
        sandbox.set_churn(TOKEN, None)
    changes = sandbox.changes(TOKEN)
    assert changes.counts["pay_bill"] and changes.counts["delete_order"], changes.counts

    with services.session_factory() as session:
        assert get_run(session, first).resumeCount == 1
    incremental = _start(services, company, mode="incremental")
    assert step_until_done(services, incremental, max_steps=5_000).status == "DONE"
    period = _start(services, company, mode="period", month=month_of(start))
    assert step_until_done(services, period, max_steps=5_000).status == "DONE"

    assert mismatches(services.session_factory, sandbox, TOKEN, company, start, end) == []
    services.close()
