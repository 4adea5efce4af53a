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
REFRESH_TASK = "tinysync.refresh_v3_tokens"

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


def refresh_v3_tokens(celery: TinySyncCelery) -> dict[str, int]:
    """Refresh the pair of every v3 company that is due, busy or idle, so that no refresh
    token lapses unused (`core.v3.tokens.refresh_idle`; one renewer per company)."""
    from core.v3.tokens import refresh_idle

    svc = celery.services
    v3 = svc.client.v3
    if v3 is None:
        return {"refreshed": 0, "lost": 0}
    refreshed, lost = refresh_idle(v3.renewer(svc.session_factory, svc.settings))
    if refreshed or lost:
        log.info(
            "v3 tokens: %d pair(s) refreshed, %d company(ies) need reconnecting", refreshed, lost
        )
    return {"refreshed": refreshed, "lost": lost}
