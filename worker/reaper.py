"""The reaper: beat's periodic look for runs that stopped moving, which it sends again.

A RUNNING run stops moving when its executor died in the middle of a module (its lease
expired), or when the message of its next module was lost between two modules (no lease, and
no progress for SYNC_LEASE_SECONDS), e.g. a Redis restarted without persistence: both are
`core.runs.lease.stale_runs`. The reaper sends the run's remaining modules again; they resume
from their page checkpoints. Claiming a run (`lease.claim_stale`) is a conditional UPDATE of
its `updatedAt`, so two reapers (two beat processes) send it once, and a run is sent again at
most once per lease period.

A run whose executors keep dying (a module killed again and again: out of memory, a crash)
is not sent forever: once it was taken over SYNC_MAX_RESUMES times, the reaper fails it,
resumable, and its failure is notified like any other (the lifecycle's `notifier`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery.utils.log import get_task_logger

from core.runs import add_log, fail_run, get_run, lease, notifier
from core.wording import labels
from worker.tasks import enqueue_run, remaining_modules

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

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
            run = get_run(session, stale.run_id)
            if run.resumeCount >= svc.settings.sync_max_resumes:
                _give_up(celery, session, run.id, run.resumeCount)
                continue
            modules = remaining_modules(run.progressJson)
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


def _give_up(celery: TinySyncCelery, session: Session, run_id: str, takeovers: int) -> None:
    svc = celery.services
    message = (
        f"o executor desta sincronização parou {takeovers} vezes; o reaper desistiu dela "
        f"(SYNC_MAX_RESUMES={svc.settings.sync_max_resumes}); retome-a quando a causa for achada"
    )
    fail_run(session, run_id, message, on_finish=notifier(svc.session_factory, svc.settings))
    log.error("run %s: given up after %d take-overs", run_id, takeovers)
