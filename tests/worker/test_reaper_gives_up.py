"""A run whose executors keep dying is not sent to the workers forever: past SYNC_MAX_RESUMES
take-overs the reaper fails it (resumable), and the failure is notified like any other."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from core.models import SyncRun, utcnow
from tests.core.test_notify import SECRET, Receiver
from tests.support.processes import wait_until
from tests.worker.test_tasks import Embedded, _app
from worker.reaper import reap_stale_runs


@pytest.fixture
def hook():
    receiver = Receiver([])
    yield receiver
    receiver.close()


def _died_again(app: Embedded, run_id: str, takeovers: int) -> None:
    """The run's executor died with its lease held, after `takeovers` take-overs."""
    with app.services.session_factory() as session:
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(
                updatedAt=utcnow() - timedelta(minutes=5),
                leaseOwner="dead-host:1:0",
                leaseExpiresAt=utcnow() - timedelta(seconds=5),
                resumeCount=takeovers,
            )
        )
        session.commit()


def test_the_reaper_gives_up_a_run_taken_over_too_often_and_notifies(
    db_url, sandbox, redis_server, hook
):
    with _app(
        db_url,
        sandbox,
        redis_server,
        sync_max_resumes=3,
        notify_webhook_url=hook.url,
        notify_webhook_secret=SECRET,
    ) as app:
        _, below = app.started_run("tok-reap-below")
        _, run_id = app.started_run("tok-reap-often")
        _died_again(app, below, 2)
        _died_again(app, run_id, 3)
        assert reap_stale_runs(app.celery) == [below]  # sent again: under the cap
        run = app.run(run_id)
        assert run.status == "FAILED"
        assert "parou 3 vezes" in run.errorMessage and "SYNC_MAX_RESUMES=3" in run.errorMessage
        assert run.leaseOwner is None
        assert {m["status"] for m in run.progressJson["modules"].values()} == {"failed"}
        wait_until(lambda: hook.received, 15, "the failure notification")
    sent = [json.loads(body) for _, body in hook.received]
    assert [(s["runId"], s["event"]) for s in sent] == [(run_id, "run.failed")]
