"""A module of a test's own, given to `run_step` as its registry: it runs, pauses, resumes."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from core.models import SalesOrder, SyncRunLog
from core.modules.base import BackOffLater, ModuleContext
from core.modules.paging import paged
from core.runs import create_run, get_run, start_run
from core.steps import StepResult, run_step
from tests.support.services import fast_spec, new_company

KEY = "test_orders"
PAUSE_SECONDS = 1.0


class OrderIds:
    """Lists the sandbox's orders with `paged` and keeps their ids; asks for one back-off."""

    key = KEY

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.pages: list[int] = []
        self.paused = False

    def run(self, ctx: ModuleContext) -> bool:
        def params_for(start: date, end: date) -> dict[str, Any]:
            return {"dataInicial": start, "dataFinal": end}

        def write(records: list[dict[str, Any]], page_no: int) -> None:
            ctx.commit(processed=len(records))
            self.pages.append(page_no)
            self.ids += [int(r["id"]) for r in records]
            if page_no == 2 and not self.paused:
                self.paused = True  # as Tiny's code 6 would, after page 2 is saved
                raise BackOffLater(PAUSE_SECONDS)

        return paged(ctx, "pedidos.pesquisa.php", "pedidos", "pedido", params_for, write)


def _step(services, run_id: str, module: OrderIds) -> StepResult:
    # A zero budget: every step does one page and pauses, out of time.
    return run_step(
        services.session_factory,
        services.settings,
        services.client,
        run_id,
        budget_seconds=0,
        modules=(module,),
    )


def test_a_module_of_its_own_runs_pauses_and_resumes_from_its_checkpoint(services, sandbox):
    company = new_company(services, sandbox, "tok-own", fast_spec(orders=450, days=60))
    today = date.today()
    start = today - timedelta(days=59)
    truth = sandbox.truth("tok-own", start, today)
    total_pages = -(-len(truth.orders) // 100)
    assert total_pages >= 3
    with services.session_factory() as session:
        run = create_run(
            session,
            services.settings,
            company_id=company,
            mode="period",
            start_date=start.isoformat(),
            end_date=today.isoformat(),
            modules=[KEY],
        )
        start_run(session, run.id)
    module = OrderIds()

    first = _step(services, run.id, module)
    assert (first.executed, first.status, first.has_more) == (KEY, "RUNNING", True)
    assert list(first.progress["modules"]) == [KEY]  # the run covers this registry only
    assert first.progress["modules"][KEY]["status"] == "running"
    assert first.progress["modules"][KEY]["processed"] == 100
    with services.session_factory() as session:
        assert get_run(session, run.id).checkpointJson[KEY]["page"] == 2

    paused = _step(services, run.id, module)
    assert paused.executed == KEY and paused.status == "RUNNING"
    assert 0 < paused.retry_after_seconds <= PAUSE_SECONDS
    assert paused.progress["modules"][KEY]["processed"] == 200  # page 2 kept over the pause
    calls = sandbox.counters("tok-own").calls
    waiting = _step(services, run.id, module)
    assert waiting.executed is None and waiting.retry_after_seconds
    assert sandbox.counters("tok-own").calls == calls  # no Tiny call while it waits

    deadline = time.monotonic() + 10 * PAUSE_SECONDS
    result = waiting
    while result.executed is None:
        assert time.monotonic() < deadline, "the paused module never resumed"
        time.sleep(0.05)
        result = _step(services, run.id, module)
    while result.has_more:
        result = _step(services, run.id, module)

    assert result.status == "DONE"
    # Each page once per pass, in order; a second pass confirms nothing moved between pages
    # ("two passes agree", core.modules.paging), so every listing call is made twice.
    assert module.pages == list(range(1, total_pages + 1)) * 2
    assert sorted(module.ids) == sorted(list(truth.orders) * 2)
    counters = sandbox.counters("tok-own")
    assert dict(counters.per_service) == {"pedidos.pesquisa.php": 2 * total_pages}
    with services.session_factory() as session:
        done = get_run(session, run.id)
        assert done.progressJson["modules"][KEY]["status"] == "done"
        assert done.progressJson["modules"][KEY]["processed"] == len(truth.orders)
        # Counted once per record (the accepted pass), though every page was read twice.
        assert done.tinyCalls == 2 * total_pages
        assert session.scalar(select(func.count()).select_from(SalesOrder)) == 0
        messages = session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run.id))
        assert any(m.startswith(f"{KEY} verificadas:") for m in messages)
