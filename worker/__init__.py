"""The Celery worker of tinysync: one task per module, chained, plus beat's schedules."""

from __future__ import annotations

from worker.app import TinySyncCelery, celery_init_app
from worker.tasks import enqueue_run

__all__ = ["TinySyncCelery", "celery_init_app", "enqueue_run"]
