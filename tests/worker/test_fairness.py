"""Fairness: backfills beside an incremental run do not hold back its first Tiny call.

A real `tinysync worker` with fewer threads than active runs: two 12-month backfills take
both threads first; the incremental run started after them must still make its first call
within seconds, because a module task works for one slice (SYNC_TASK_SLICE_SECONDS) and then
queues again behind the tasks that were waiting.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from core.runs import RunStatus, cancel_run, create_run, start_run
from tests.support.deployment import Deployment, account
from tests.support.processes import wait_until
from worker import enqueue_run

#: Lenient: a slice (2 s) plus a page, on a loaded 2-core machine.
FIRST_CALL_WITHIN_SECONDS = 20.0


def _backfill(d: Deployment, company_id: str) -> str:
    """A started 12-month period run, sent to the workers."""
    today = date.today()
    with d.services.session_factory() as session:
        run = create_run(
            session,
            d.settings,
            company_id=company_id,
            mode="period",
            start_date=(today - timedelta(days=364)).isoformat(),
            end_date=today.isoformat(),
        )
        start_run(session, run.id)
    enqueue_run(d.celery, run.id)
    return run.id


def test_an_incremental_run_beside_two_backfills_makes_its_first_call_within_seconds(deploy, token):
    # 20 calls a second per account: each backfill has about a minute of order details.
    d: Deployment = deploy(TINY_MIN_INTERVAL="50", SYNC_TASK_SLICE_SECONDS="2")
    d.worker(concurrency=2)
    big = account(orders=1500, days=365)
    backfills = [_backfill(d, d.company(f"{token}-big{i}", big)) for i in range(2)]
    for i in range(2):  # both threads busy with a backfill
        wait_until(lambda i=i: d.sandbox.counters(f"{token}-big{i}").calls > 0, 60, "backfill")

    small = f"{token}-small"
    company = d.company(small, account(orders=20))
    began = time.monotonic()
    run_id = d.start(company)
    wait_until(lambda: d.sandbox.counters(small).calls > 0, 120, "the incremental's first call")
    waited = time.monotonic() - began

    assert waited < FIRST_CALL_WITHIN_SECONDS, (waited, d.processes_output())
    assert {d.run(b).status for b in backfills} == {RunStatus.RUNNING.value}  # still going
    assert d.wait_finished(run_id, timeout=120).status == "DONE", d.processes_output()
    with d.services.session_factory() as session:
        for backfill in backfills:
            cancel_run(session, backfill)
