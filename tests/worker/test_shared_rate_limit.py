"""Tiny's limits hold per account across worker processes (the limiter shared through Redis)."""

from __future__ import annotations

import time

from tests.support.deployment import Deployment, account, assert_synced


def test_two_workers_syncing_two_companies_of_one_tiny_account_never_exceed_its_limit(
    deploy, token
):
    # 30 ms apart is 33 calls a second; the account allows 40 a second and one at a time,
    # while two workers pacing on their own would make 66 a second, two at a time.
    d: Deployment = deploy(TINY_MIN_INTERVAL="30", TINY_CONCURRENCY="1")
    spec = account(orders=80, rate_limit_calls=40, rate_limit_window_seconds=1.0, max_concurrent=1)
    d.worker("one")
    d.worker("two")
    first = d.company(token, spec)
    second = d.company(token, spec)  # the same Tiny token: one account, one limit
    began = time.monotonic()
    runs = [d.start(first), d.start(second)]
    finished = [d.wait_finished(run_id, timeout=60) for run_id in runs]
    elapsed = time.monotonic() - began

    assert [r.status for r in finished] == ["DONE", "DONE"], d.processes_output()
    counters = d.sandbox.counters(token)
    assert counters.rate_limit_violations == 0
    assert counters.concurrency_violations == 0
    assert counters.max_in_flight == 1
    # Both runs really overlapped, paced together: as long as their calls in single file.
    assert sum(r.tinyCalls for r in finished) == counters.calls
    assert elapsed >= 0.9 * counters.calls * 0.030
    run_on = [p.name for p in d.procs if "tinysync.module" in p.output]
    assert sorted(run_on) == ["one", "two"]
    today_truth = d.sandbox.truth(token, finished[0].startDate.date(), finished[0].endDate.date())
    assert_synced(d.services, first, today_truth)
    assert_synced(d.services, second, today_truth)
