"""The sync run: its state and everything that changes it (the way rq's Job owns its state).

- `model`: RunStatus, ModuleStatus and the typed progress document (`Progress`);
- `lifecycle`: every status transition, through one conditional UPDATE (`transition`);
- `lease`: which executor may work on a RUNNING run, its heartbeat, and stale runs;
- `inputs`: the mode and period a person asks for; `logs`: the run's log;
- `history`: listing and counting runs, and the periodic incremental runs.

The executor that drives a run is `core.steps.run_step`; the HTTP views are `api.run_views`.
"""

from __future__ import annotations

from core.runs.history import (
    PeriodicOutcome,
    count_runs_by_status,
    last_finished_runs,
    list_runs,
    start_incremental_runs,
)
from core.runs.inputs import (
    MAX_PERIOD_DAYS,
    Mode,
    Window,
    parse_day,
    parse_month,
    resolve_window,
    run_window,
)
from core.runs.lease import new_owner
from core.runs.lifecycle import (
    active_run_id,
    cancel_run,
    create_run,
    expire_run,
    expire_stuck_runs,
    fail_run,
    finalize_run,
    get_run,
    notifier,
    resume_run,
    start_run,
    transition,
)
from core.runs.logs import MAX_LOG_MESSAGE, add_log, list_logs
from core.runs.model import (
    ACTIVE_STATUSES,
    ModuleProgress,
    ModuleStatus,
    Progress,
    RunStatus,
    next_module,
    remaining_modules,
)

__all__ = [
    "ACTIVE_STATUSES",
    "MAX_LOG_MESSAGE",
    "MAX_PERIOD_DAYS",
    "Mode",
    "ModuleProgress",
    "ModuleStatus",
    "PeriodicOutcome",
    "Progress",
    "RunStatus",
    "Window",
    "active_run_id",
    "add_log",
    "cancel_run",
    "count_runs_by_status",
    "create_run",
    "expire_run",
    "expire_stuck_runs",
    "fail_run",
    "finalize_run",
    "get_run",
    "notifier",
    "list_logs",
    "list_runs",
    "new_owner",
    "next_module",
    "parse_day",
    "parse_month",
    "remaining_modules",
    "resolve_window",
    "resume_run",
    "run_window",
    "start_incremental_runs",
    "last_finished_runs",
    "start_run",
    "transition",
]
