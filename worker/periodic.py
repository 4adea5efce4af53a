"""Beat's periodic sync: an incremental run for every active company, sent to the workers.

Safe with two beat processes ticking at once, or a sync that outlasts the interval: the
database's unique index on active runs lets one `create_run` per company win, and the others
get ActiveRunExists and skip the company.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery.utils.log import get_task_logger

from core.modules import MODULE_KEYS
from core.runs import start_incremental_runs
from worker.tasks import enqueue_run

if TYPE_CHECKING:
    from worker.app import TinySyncCelery

TASK = "tinysync.sync_all_companies"

log = get_task_logger(__name__)


def sync_all_companies(celery: TinySyncCelery) -> dict[str, Any]:
    """Create, start and enqueue an incremental run per active company without an active run."""
    svc = celery.services
    with svc.session_factory() as session:
        outcome = start_incremental_runs(
            session,
            svc.settings,
            triggered_by="beat",
            hand_over=lambda run_id: enqueue_run(celery, run_id, MODULE_KEYS),
        )
        # Read the ids while the session is open: a lost race rolls back and expires them.
        created = [run.id for run in outcome.created]
    log.info(
        "periodic sync: %d run(s) started, %d company(ies) busy, %d could not be enqueued",
        len(created),
        len(outcome.skipped),
        len(outcome.failed),
    )
    return {
        "created": created,
        "skipped": dict(outcome.skipped),
        "failed": dict(outcome.failed),
    }
