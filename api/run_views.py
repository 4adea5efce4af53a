"""The JSON a person or a client sees of a run: summaries, progress, status and log lines.

Views only: they read a run and its logs and never change them (that is `core.runs`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from core.models import SyncRun, SyncRunLog, utcnow
from core.modules import MODULE_KEYS
from core.runs import Progress, RunStatus, get_run, list_logs, run_window


def progress_view(run: SyncRun) -> dict[str, Any]:
    """The run's progress as shown to people: unfinished modules of a canceled run canceled."""
    return Progress.from_json(run.progressJson, MODULE_KEYS).as_shown(run.status).to_json()


def has_more(run: SyncRun) -> bool:
    """Whether stepping the run can still do anything."""
    return RunStatus(run.status).is_active


def run_summary(run: SyncRun) -> dict[str, Any]:
    """The JSON of a run in listings: what, when, how it ended, totals."""
    progress = Progress.from_json(run.progressJson)
    duration = None
    if run.startedAt:
        duration = ((run.finishedAt or utcnow()) - run.startedAt).total_seconds()
    window = run_window(run)
    return {
        "runId": run.id,
        "id": run.id,
        "companyId": run.companyId,
        "mode": run.mode,
        "status": run.status,
        "startDate": window.start.isoformat(),
        "endDate": window.end.isoformat(),
        "currentModule": run.currentModule,
        "errorMessage": run.errorMessage,
        "createdAt": run.createdAt.isoformat(),
        "startedAt": run.startedAt.isoformat() if run.startedAt else None,
        "finishedAt": run.finishedAt.isoformat() if run.finishedAt else None,
        "durationSeconds": duration,
        "processed": progress.processed,
        "skipped": progress.skipped,
        "tinyCalls": run.tinyCalls,
        "triggeredByUserId": run.triggeredByUserId,
    }


def log_view(entry: SyncRunLog) -> dict[str, Any]:
    """The JSON of a log line."""
    return {
        "id": entry.id,
        "timestamp": entry.timestamp.isoformat(),
        "level": entry.level,
        "message": entry.message,
        "module": entry.module,
        "metadata": entry.metadata_,
    }


def tiny_wait_seconds(run: SyncRun) -> float | None:
    """Seconds the run still waits for a pause Tiny imposed (code 6), None when it does not.

    Read from the modules' checkpoints (`notBefore`), so every executor's pause shows.
    """
    if not RunStatus(run.status).is_active:
        return None
    now = utcnow()
    left = 0.0
    for checkpoint in (run.checkpointJson or {}).values():
        stamp = checkpoint.get("notBefore") if isinstance(checkpoint, dict) else None
        if stamp:
            try:
                until = datetime.fromisoformat(stamp)
            except ValueError:
                continue
            if until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            left = max(left, (until - now).total_seconds())
    return round(left, 1) if left > 0 else None


def run_status(session: Session, run_id: Any, *, log_limit: int = 20) -> dict[str, Any]:
    """Everything the status route shows: the run, its modules and its latest logs."""
    run = get_run(session, run_id)
    logs, _ = list_logs(session, run.id, limit=log_limit)
    return {
        **run_summary(run),
        "progress": progress_view(run),
        "hasMore": has_more(run),
        "retryAfterSeconds": tiny_wait_seconds(run),
        "updatedAt": run.updatedAt.isoformat(),
        "logs": [log_view(entry) for entry in logs],
    }
