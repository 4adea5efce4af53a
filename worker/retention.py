"""Beat's daily prune: old run logs, old runs and dead UI sessions (`core.retention`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery.utils.log import get_task_logger

from core.retention import prune

if TYPE_CHECKING:
    from worker.app import TinySyncCelery

TASK = "tinysync.prune"
EVERY_SECONDS = 24 * 3600

log = get_task_logger(__name__)


def prune_old_rows(celery: TinySyncCelery) -> dict[str, Any]:
    """Delete what SYNC_LOG_RETENTION_DAYS and SYNC_RUN_RETENTION_DAYS let go."""
    svc = celery.services
    with svc.session_factory() as session:
        pruned = prune(session, svc.settings)
    log.info("pruned %d log lines, %d runs, %d sessions", pruned.logs, pruned.runs, pruned.sessions)
    return {"logs": pruned.logs, "runs": pruned.runs, "sessions": pruned.sessions}
