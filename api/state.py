"""What the API keeps per app: the core services, the executor hook, metrics and the broker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from flask import current_app

from api.status import StatusBodies
from core.services import Services

if TYPE_CHECKING:
    from api.metrics import Metrics

#: Where `create_app` puts the core services; the UI and the worker glue read them here too.
SERVICES_KEY = "tinysync"
STATE_KEY = "tinysync.api"

Enqueue = Callable[[str], None]


@dataclass
class ApiState:
    """The API's per-app parts, built by `create_app` and reached through `state()`."""

    services: Services
    enqueue: Enqueue | None
    metrics: Metrics
    broker: Any = None  # a redis.Redis for the health check, when the broker is Redis
    status_bodies: StatusBodies = field(default_factory=StatusBodies)

    @property
    def celery(self) -> bool:
        """True when runs execute on Celery workers instead of inside `step` requests."""
        return self.services.settings.executor == "celery"


def state() -> ApiState:
    """The current app's ApiState."""
    return cast(ApiState, current_app.extensions[STATE_KEY])


def services() -> Services:
    """The current app's core services."""
    return state().services
