"""The reaper: beat's periodic look for runs that stopped moving, which it sends again.

A RUNNING run stops moving when its executor died in the middle of a module (its lease
expired), or when the message of its next module was lost between two modules (no lease, and
no progress for SYNC_LEASE_SECONDS), e.g. a Redis restarted without persistence: both are
`core.runs.lease.stale_runs`. The reaper sends the run's remaining modules again; they resume
from their page checkpoints. Claiming a run (`lease.claim_stale`) is a conditional UPDATE of
its `updatedAt`, so two reapers (two beat processes) send it once, and a run is sent again at
most once per lease period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery.utils.log import get_task_logger

from core.runs import add_log, get_run, lease
from core.wording import labels
from worker.tasks import enqueue_run, remaining_modules

if TYPE_CHECKING:
    from worker.app import TinySyncCelery

TASK = "tinysync.reap_stale_runs"

log = get_task_logger(__name__)


def reap_stale_runs(celery: TinySyncCelery) -> list[str]:
    """Send again the remaining modules of every run that stopped moving; returns their ids."""
    svc = celery.services
    lease_seconds = svc.settings.sync_lease_seconds
    sent: list[str] = []
    with svc.session_factory() as session:
        for stale in lease.stale_runs(session, lease_seconds):
            if not lease.claim_stale(session, stale.run_id, lease_seconds):
                continue  # it moved meanwhile, or another reaper claimed it
            modules = remaining_modules(get_run(session, stale.run_id).progressJson)
            why = (
                "o executor parou de responder"
                if stale.why is lease.Staleness.LEASE_EXPIRED
                else f"sem executor e sem progresso por {lease_seconds:g} s (mensagem perdida)"
            )
            what = ", ".join(modules) if modules else "the finaliser"
            shown = labels(modules) if modules else "a finalização"
            add_log(
                session,
                stale.run_id,
                "warn",
                f"reaper: {shown} reenviado aos workers: {why}",
            )
            session.commit()
            enqueue_run(celery, stale.run_id, modules)
            log.warning("run %s: sent %s again: %s", stale.run_id, what, why)
            sent.append(stale.run_id)
    return sent
