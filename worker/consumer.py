"""The worker's consumer: Celery's own, made to survive a broker restart.

When Redis goes away while the worker runs a module (its message unacknowledged, with
`task_acks_late`) and waits on the queue with a free pool process, Celery 5.7's consumer
first `collect()`s the lost connection: the channel's close stops at the dead BRPOP, and the
collect drops the transport's link to its connection. It then `close()`s the connection: the
channel's close goes on, wants to put the unacked messages back through that dropped link,
and kombu raises `AttributeError: 'NoneType' object has no attribute 'hostname'`. That is not
a connection error, so it escapes Celery's `ignore_errors` and the worker stops ("Unrecoverable
error", exit status 0) instead of reconnecting; and had it gone on, the ack of the module
still running would trip over the same link when the module ends. The soak met it on about
every second Redis restart under load; `tests/worker/test_recovery.py` makes it happen.

This consumer logs the failed cleanup and gives the old transport its link back, so the
worker reconnects as after any broker loss and the acks of the old messages reach Redis
again. Nothing is lost: the messages stay in Redis's unacked set (or went with its memory),
and the reaper sends a run whose message was lost again after SYNC_LEASE_SECONDS.
"""

from __future__ import annotations

from celery.utils.log import get_logger
from celery.worker.consumer import Consumer as CeleryConsumer

log = get_logger(__name__)

#: `worker_consumer` takes the class by name.
NAME = "worker.consumer:Consumer"


class Consumer(CeleryConsumer):
    """Celery's consumer; a failed cleanup of a lost broker connection is logged, not fatal."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Clean up the lost connection; the blueprint then reconnects as usual."""
        connection = self.connection
        transport = connection.transport if connection is not None else None
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as cleanup:
            log.warning(
                "the lost broker connection could not be closed cleanly (%r); reconnecting "
                "anyway: unacknowledged messages stay in Redis, and the reaper resends lost ones",
                cleanup,
            )
            if transport is not None and transport.client is None:
                transport.client = connection
