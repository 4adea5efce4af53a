"""The Celery app, built from the same settings as the Flask app (Flask's celery example).

`celery_init_app(settings, services_factory)` creates nothing at import time: the app, its
configuration and its tasks come into being when it is called (by `cli.celery_app()`), and the
database engine and the Tiny client are built in each worker process when it starts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery, Task, current_app
from celery.concurrency.thread import TaskPool as ThreadTaskPool
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import worker_process_init, worker_ready
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import OperationalError

from core.services import Services
from core.settings import Settings
from worker import consumer, periodic, reaper, retention, tasks

#: A message whose worker died is redelivered after this long on Redis; it must outlast the
#: hard time limit, or a module still running would be handed to a second worker.
VISIBILITY_MARGIN_SECONDS = 300

#: How a message is sent while the broker is unreachable: tried again for about 10 s (0, 0.5,
#: then every 1 s), so a Redis restart delays a `start`, a chain's next module or beat's tick
#: instead of failing it (Celery's default gives up after 0.6 s, and the API then cancels
#: the run it could not hand over).
PUBLISH_RETRY_POLICY = {
    "max_retries": 10,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}

#: Every task: a database outage makes it retry with back-off (1, 2, 4 … 60 s) rather than
#: fail; and it belongs to its app alone (Celery's default, shared, would register the first
#: app's closures on every later app of the process, with that app's services).
TASK_OPTIONS = dict(
    shared=False,
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    retry_backoff_max=60,
    max_retries=10,
)


class TinySyncCelery(Celery):
    """Celery plus the tinysync services its tasks use, built once per process."""

    def __init__(self, settings: Settings, services_factory: Callable[[], Services], **kwargs: Any):
        super().__init__("tinysync", **kwargs)
        self.settings = settings
        self._services_factory = services_factory
        self._services: Services | None = None
        self._services_pid: int | None = None
        self._services_lock = threading.Lock()

    @property
    def services(self) -> Services:
        """This process's services; a forked pool process builds its own (sockets don't fork)."""
        with self._services_lock:
            if self._services is None or self._services_pid != os.getpid():
                self._services = self._services_factory()
                self._services_pid = os.getpid()
                discard_interrupted_connections(self._services.engine)
            return self._services

    def warm_up(self) -> None:
        """Build this process's services and open a database connection before its first task."""
        with self.services.engine.connect():
            pass


def discard_interrupted_connections(engine: Engine) -> None:
    """Close, never pool again, a connection that Celery's soft time limit cut mid-call.

    The soft time limit raises SoftTimeLimitExceeded from a signal handler wherever the task
    is. Inside psycopg's wait for a reply it leaves the connection in the middle of the
    protocol (status ACTIVE); SQLAlchemy would then roll it back ("another command is already
    in progress") or, landing in the pool's pre-ping, fail to reset it ("can't change
    'autocommit' now"), and that error replaces the time limit, or a later task checks the
    broken connection out. Marking it as disconnected (the `handle_error` event's documented
    use) makes SQLAlchemy discard that one connection, and the time limit goes on as itself.
    """
    if not event.contains(engine, "handle_error", _discard_interrupted):
        event.listen(engine, "handle_error", _discard_interrupted)


def _discard_interrupted(context: ExceptionContext) -> None:
    limit = _soft_time_limit(context.original_exception)
    if limit is None:
        return
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False  # the other pooled connections are fine
    if limit is not context.original_exception:
        raise limit  # not the driver's error while cleaning up after it: the cause
    if context.sqlalchemy_exception is not None:  # not wrapped in a StatementError either
        raise SoftTimeLimitExceeded(*limit.args)


def _soft_time_limit(exc: BaseException | None) -> SoftTimeLimitExceeded | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, SoftTimeLimitExceeded):
            return exc
        exc, seen = exc.__context__, seen + 1
    return None


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's settings for tinysync: at-least-once delivery, one task at a time per process."""
    hard = settings.sync_module_time_limit_seconds
    return {
        "broker_url": settings.celery_broker_url,
        "broker_connection_retry_on_startup": True,
        "task_publish_retry": True,
        "task_publish_retry_policy": PUBLISH_RETRY_POLICY,
        "broker_transport_options": {"visibility_timeout": hard + VISIBILITY_MARGIN_SECONDS},
        # Ack after the task, and put it back if its process dies: a module is never lost,
        # and a second delivery is harmless (the lease or the module's status turns it away).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.sync_module_soft_time_limit_seconds,
        "task_time_limit": hard,
        # A task keeps writing to the database while the broker reconnects, and the worker
        # reconnects even when Celery trips over the lost connection's cleanup.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_consumer": consumer.NAME,
        # Progress lives in the database; Flower reads task states from events.
        "task_ignore_result": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "beat_schedule": beat_schedule(settings),
    }


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """The reaper every SYNC_REAPER_INTERVAL_SECONDS, the daily prune, and incremental syncs
    of every company."""
    reap_every = timedelta(seconds=settings.sync_reaper_interval_seconds)
    schedule: dict[str, Any] = {
        "reap-stale-runs": {
            "task": reaper.TASK,
            "schedule": reap_every,
            "options": {"expires": reap_every.total_seconds()},  # a late tick is only noise
        }
    }
    schedule["prune-old-rows"] = {
        "task": retention.TASK,
        "schedule": timedelta(seconds=retention.EVERY_SECONDS),
        "options": {"expires": 3600},
    }
    if settings.tiny_v3_refresh_check_minutes > 0:
        check_every = timedelta(minutes=settings.tiny_v3_refresh_check_minutes)
        schedule["refresh-v3-tokens"] = {
            "task": periodic.REFRESH_TASK,
            "schedule": check_every,
            "options": {"expires": check_every.total_seconds()},
        }
    if settings.sync_beat_interval_minutes > 0:
        # Each company has its own slot in the interval (worker/periodic.py): beat ticks
        # often and starts the companies that are due, so their runs spread out.
        tick = periodic.tick_seconds(timedelta(minutes=settings.sync_beat_interval_minutes))
        schedule["sync-all-companies"] = {
            "task": periodic.TASK,
            "schedule": timedelta(seconds=tick),
            "options": {"expires": tick},
        }
    return schedule


def celery_init_app(settings: Settings, services_factory: Callable[[], Services]) -> TinySyncCelery:
    """Build the Celery app and its tasks for `settings`; services come from the factory."""
    celery = TinySyncCelery(settings, services_factory)
    celery.conf.update(celery_config(settings))

    @worker_process_init.connect(weak=False)
    def warm_up(**_: Any) -> None:
        """Ready a new pool process at once: a cold first task costs its module ~0.3 s."""
        if current_app._get_current_object() is celery:  # the signal reaches every app
            celery.warm_up()

    def module_failed(
        task: Task, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """A module task that failed: past the hard time limit, its run fails (and says so)."""
        if isinstance(exc, TimeLimitExceeded):
            tasks.hard_time_limit_passed(celery, *args, **kwargs)

    @worker_ready.connect(weak=False)
    def warm_up_threads(sender: Any = None, **_: Any) -> None:
        """The thread pool's process is the worker's own: ready it before the first task."""
        pool = getattr(sender, "pool", None)
        if isinstance(pool, ThreadTaskPool) and sender.app is celery:
            celery.warm_up()

    # No cap on retries here: a Tiny back-off or a database outage is waited out.
    @celery.task(
        name=tasks.MODULE_TASK,
        bind=True,
        on_failure=module_failed,
        **{**TASK_OPTIONS, "max_retries": None},
    )
    def module_task(self: Task, run_id: str, module: str) -> dict[str, Any]:
        """Run one module of a run through core's run_step; come back when Tiny says when."""
        outcome = tasks.run_module(celery, run_id, module)
        if "retryAfterSeconds" in outcome:
            raise self.retry(countdown=outcome["retryAfterSeconds"])
        if outcome.get("handBack"):
            # The slice is over: back to the queue's end, the chain intact, the thread freed.
            raise self.retry(countdown=0)
        return outcome

    @celery.task(name=tasks.FINALIZE_TASK, **TASK_OPTIONS)
    def finalize(run_id: str) -> dict[str, Any]:
        """Close the run: DONE, or FAILED naming its failed modules."""
        return tasks.finalize(celery, run_id)

    @celery.task(name=reaper.TASK, **TASK_OPTIONS)
    def reap_stale_runs() -> list[str]:
        """Re-enqueue runs whose executor died or whose next message was lost."""
        return reaper.reap_stale_runs(celery)

    @celery.task(name=retention.TASK, **TASK_OPTIONS)
    def prune_old_rows() -> dict[str, Any]:
        """Delete old run logs, old runs (each company's latest kept) and dead sessions."""
        return retention.prune_old_rows(celery)

    @celery.task(name=periodic.TASK, **TASK_OPTIONS)
    def sync_all_companies() -> dict[str, Any]:
        """An incremental run for every active company that has no active run."""
        return periodic.sync_all_companies(celery)

    @celery.task(name=periodic.REFRESH_TASK, **TASK_OPTIONS)
    def refresh_v3_tokens() -> dict[str, int]:
        """Refresh the v3 token pairs that are due, so an idle company never lapses."""
        return periodic.refresh_v3_tokens(celery)

    return celery
