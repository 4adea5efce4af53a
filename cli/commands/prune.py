"""`tinysync prune`: delete old run logs, old runs and dead UI sessions now."""

from __future__ import annotations

from cli.console import console, load_settings
from cli.database import for_writing
from core.retention import prune as prune_rows


def prune() -> None:
    """Delete what SYNC_LOG_RETENTION_DAYS / SYNC_RUN_RETENTION_DAYS let go (beat does it daily).

    Each company's latest run is kept, whatever its age; active runs are never touched.
    """
    settings = load_settings()
    services = for_writing(settings)
    with services.session_factory() as session:
        pruned = prune_rows(session, settings)
    console.print(
        f"deleted {pruned.logs} log line(s), {pruned.runs} run(s), {pruned.sessions} session(s)"
    )
