"""Beat's periodic sync: an incremental run for every active company, sent to the workers.

Safe with two beat processes ticking at once, or a sync that outlasts the interval: the
database's unique index on active runs lets one `create_run` per company win, and the others
get ActiveRunExists and skip the company.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery.utils.log import get_task_logger

from core.companies import list_companies
from core.errors import ActiveRunExists
from core.modules import MODULE_KEYS
from core.runs import cancel_run, create_run, start_run
from worker.tasks import enqueue_run

if TYPE_CHECKING:
    from worker.app import TinySyncCelery

TASK = "tinysync.sync_all_companies"

log = get_task_logger(__name__)


def sync_all_companies(celery: TinySyncCelery) -> dict[str, Any]:
    """Create, start and enqueue an incremental run per active company without an active run."""
    svc = celery.services
    created: list[str] = []
    skipped: dict[str, str | None] = {}
    with svc.session_factory() as session:
        for company in list_companies(session, active_only=True):
            try:
                run = create_run(
                    session,
                    svc.settings,
                    company_id=company.id,
                    mode="incremental",
                    triggered_by="beat",
                )
            except ActiveRunExists as exc:
                skipped[company.id] = exc.run_id
                continue
            start_run(session, run.id)
            try:
                enqueue_run(celery, run.id, MODULE_KEYS)
            except Exception as exc:  # whatever the broker library raises
                # A RUNNING run no worker will pick up would block the company's next runs.
                log.exception("could not enqueue run %s", run.id)
                cancel_run(
                    session,
                    run.id,
                    reason=f"could not hand the run to the workers: {type(exc).__name__}",
                )
                continue
            created.append(run.id)
    log.info("periodic sync: %d run(s) started, %d company(ies) busy", len(created), len(skipped))
    return {"created": created, "skipped": skipped}
