"""Beat's periodic sync: an incremental run per active company, each at its own moment.

Every company has a slot in SYNC_BEAT_INTERVAL_MINUTES, offset from the interval's start by a
stable hash of its id, so N companies' runs spread over the interval instead of all firing
at once. Beat ticks every TICK_SECONDS (or the interval, if shorter); a tick starts the
companies that are due: whose latest slot came after their latest finished run was created
(`due_companies`). A missed tick is caught up at the next one; a company never synced is due
at once.

Safe with two beat processes ticking at once, or a sync that outlasts the interval: the
database's unique index on active runs lets one `create_run` per company win, and the others
get ActiveRunExists and skip the company.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery.utils.log import get_task_logger

from core.models import utcnow
from core.modules import MODULE_KEYS
from core.runs import last_finished_runs, start_incremental_runs
from worker.tasks import enqueue_run

if TYPE_CHECKING:
    from worker.app import TinySyncCelery

TASK = "tinysync.sync_all_companies"
#: How often beat looks for companies that are due (at most: never more than the interval).
TICK_SECONDS = 60.0
REFRESH_TASK = "tinysync.refresh_v3_tokens"

log = get_task_logger(__name__)


def tick_seconds(interval: timedelta) -> float:
    """How often beat ticks for an interval: every TICK_SECONDS, or the interval if shorter."""
    return min(TICK_SECONDS, interval.total_seconds())


def slot_offset(company_id: str, interval: timedelta) -> float:
    """Where in each interval the company's slot falls, in seconds; stable across processes."""
    digest = hashlib.sha256(company_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * interval.total_seconds()


def latest_slot(company_id: str, now: datetime, interval: timedelta) -> datetime:
    """The company's latest slot at or before `now`."""
    period = interval.total_seconds()
    offset = slot_offset(company_id, interval)
    cycles = math.floor((now.timestamp() - offset) / period)
    return datetime.fromtimestamp(cycles * period + offset, UTC)


def due_companies(
    last_runs: Mapping[str, datetime | None], now: datetime, interval: timedelta
) -> list[str]:
    """The companies whose latest slot came after their latest finished run was created."""
    return [
        company_id
        for company_id, last in last_runs.items()
        if last is None or last < latest_slot(company_id, now, interval)
    ]


def sync_all_companies(celery: TinySyncCelery, now: datetime | None = None) -> dict[str, Any]:
    """Create, start and enqueue an incremental run per due company without an active run."""
    svc = celery.services
    interval = timedelta(minutes=svc.settings.sync_beat_interval_minutes)
    with svc.session_factory() as session:
        last_runs = last_finished_runs(session)
        due = due_companies(last_runs, now or utcnow(), interval) if interval else list(last_runs)
        outcome = start_incremental_runs(
            session,
            svc.settings,
            triggered_by="beat",
            hand_over=lambda run_id: enqueue_run(celery, run_id, MODULE_KEYS),
            only=set(due),
        )
        # Read the ids while the session is open: a lost race rolls back and expires them.
        created = [run.id for run in outcome.created]
    log.info(
        "periodic sync: %d run(s) started, %d company(ies) busy, %d could not be enqueued, "
        "%d waiting for their slot",
        len(created),
        len(outcome.skipped),
        len(outcome.failed),
        len(last_runs) - len(due),
    )
    return {
        "created": created,
        "skipped": dict(outcome.skipped),
        "failed": dict(outcome.failed),
        "waiting": len(last_runs) - len(due),
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
