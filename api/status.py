"""The cheap path of the status route, which many browsers poll every second or two.

One small query gives a version of everything the route shows (its ETag). A poller that
already has that version gets a 304; one that has not gets the body this process last built
for that version, if any, so a crowd watching the same run costs one query per poll, not the
four of `api.run_views.run_status`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import Engine, bindparam, func, select

from core.companies import check_id
from core.errors import NotFoundError
from core.models import SyncRun, SyncRunLog

CACHED_BODIES = 256

# Built once: constructing the statement costs more than running it.
_LOG_COUNT = select(func.count()).where(SyncRunLog.runId == SyncRun.id).scalar_subquery()
_VERSION = select(SyncRun.status, SyncRun.updatedAt, SyncRun.currentModule, _LOG_COUNT).where(
    SyncRun.id == bindparam("run_id")
)


def status_etag(engine: Engine, run_id: Any) -> str:
    """A validator of everything the status route shows, for a valid id of an existing run.

    Every core transition and progress write sets `updatedAt`; logs are only ever appended,
    so their count moves with them.
    """
    rid = check_id(run_id, "runId")
    with engine.connect() as conn:
        row = conn.execute(_VERSION, {"run_id": rid}).one_or_none()
    if row is None:
        raise NotFoundError(f"run {rid} not found")
    return hashlib.blake2b(repr((rid, *row)).encode(), digest_size=12).hexdigest()


class StatusBodies:
    """The last status body built for each run, kept with its ETag (least recently used out).

    A body is served again only for the same ETag, i.e. while nothing shown has changed;
    `durationSeconds` of an unfinished run then keeps the value it had, as after a 304.
    """

    def __init__(self, size: int = CACHED_BODIES):
        self._size = size
        self._bodies: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str, etag: str) -> bytes | None:
        """The body built for this run at this ETag, if this process has it."""
        with self._lock:
            entry = self._bodies.get(run_id)
            if entry is None or entry[0] != etag:
                return None
            self._bodies.move_to_end(run_id)
            return entry[1]

    def put(self, run_id: str, etag: str, body: bytes) -> None:
        """Remember the body built for this run at this ETag."""
        with self._lock:
            self._bodies[run_id] = (etag, body)
            self._bodies.move_to_end(run_id)
            while len(self._bodies) > self._size:
                self._bodies.popitem(last=False)
