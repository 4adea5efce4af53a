"""A module task killed at Celery's hard time limit: its run ends FAILED with a sentence, and
the failure goes out through the one notification hook, like every other way a run fails."""

from __future__ import annotations

import json

from core.modules import vw_vendas
from tests.core.test_notify import SECRET, Receiver
from tests.support.deployment import Deployment, account
from tests.support.processes import wait_until
from tests.worker.test_recovery import _HeldService, _served


def test_a_module_killed_at_the_hard_time_limit_fails_its_run_and_notifies(
    deploy, token, http_sandbox
):
    hook = Receiver([])
    held = _HeldService(http_sandbox.sandbox, vw_vendas.LIST_SERVICE)
    try:
        with _served(held) as url:
            # Soft limit = hard limit: billiard checks the hard one first, so nothing but the
            # kill stops the module (what happens when the soft limit cannot interrupt it).
            d: Deployment = deploy(
                TINY_API_URL=url,
                TINY_TIMEOUT_SECONDS="600",
                SYNC_MODULE_SOFT_TIME_LIMIT_SECONDS="3",
                SYNC_MODULE_TIME_LIMIT_SECONDS="3",
                NOTIFY_WEBHOOK_URL=hook.url,
                NOTIFY_WEBHOOK_SECRET=SECRET,
                NOTIFY_RETRY_BASE_SECONDS="0.1",
            )
            # Celery's hard time limit is the process pool's (the thread pool, the default,
            # has none: worker/timelimit.py bounds its Tiny calls instead).
            worker = d.worker(pool="prefork")
            company = d.company(token, account(orders=30, products=3))
            run_id = d.start(company)
            wait_until(held.held.is_set, 60, "vw_vendas listing")
            run = d.wait_finished(run_id, timeout=120)
            assert run.status == "FAILED", (run.errorMessage, d.processes_output())
            assert "vw_vendas" in run.errorMessage and "tempo limite" in run.errorMessage
            modules = run.progressJson["modules"]
            assert modules["vw_vendas"]["status"] == "failed"
            assert run.leaseOwner is None  # the killed executor's lease is given up
            wait_until(lambda: hook.received, 30, "the failure notification")
            assert "Hard time limit" in worker.output
    finally:
        hook.close()
    body = json.loads(hook.received[0][1])
    assert (body["event"], body["runId"], body["status"]) == ("run.failed", run_id, "FAILED")
    wait_until(lambda: any("notifica" in m for m in d.logs(run_id)), 30, "the delivery's log line")
