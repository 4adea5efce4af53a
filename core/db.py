"""Database engine and sessions, built from settings (never at import time)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.models import MoneySumAggregate
from core.settings import Settings

log = logging.getLogger(__name__)

#: How long a new connection keeps trying a PostgreSQL server this engine reached before
#: (a restart, a failover) instead of failing the request or the task at once.
RECONNECT_PATIENCE_SECONDS = 15.0
FIRST_RETRY_SECONDS = 0.05


def normalize_url(url: str) -> str:
    """Prefer psycopg 3 for PostgreSQL URLs given in the common short forms."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings | str, **kwargs: Any) -> Engine:
    """Create the engine for the configured database."""
    url = normalize_url(settings if isinstance(settings, str) else settings.database_url)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate_on_write)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    _reconnect_patiently(engine)
    return engine


def _reconnect_patiently(engine: Engine) -> None:
    """Ride out a database restart: retry a new connection for RECONNECT_PATIENCE_SECONDS.

    Only once the engine has connected: a first connection that fails is a wrong URL or a
    server that is not there, and says so at once. psycopg gives the same error type for a
    refused connection and for a wrong password, hence the "reached before" rule rather than
    a look at the error.
    """
    reached = threading.Event()

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        patience = RECONNECT_PATIENCE_SECONDS if reached.is_set() else 0.0
        deadline = time.monotonic() + patience
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                if delay == FIRST_RETRY_SECONDS:  # once per connection, not per attempt
                    log.warning(
                        "database unreachable, trying again for up to %gs: %s", patience, exc
                    )
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            else:
                reached.set()
                return connection

    event.listen(engine, "do_connect", connect)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be used (down, restarting, connection cut).

    Such a failure is the database's, not the caller's: worth retrying later, never a reason
    to record a module as failed or to answer a 500.
    """
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let pysqlite not manage transactions itself, so "BEGIN" below is ours (SQLAlchemy docs).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the database; it only skips an fsync per commit.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
    dbapi_conn.create_aggregate("money_sum", 1, MoneySumAggregate)


def _sqlite_begin_immediate_on_write(conn: Any) -> None:
    # Take the write lock up front: a deferred transaction that reads, then writes, fails at
    # once with "database is locked" when another writer got in between (WAL snapshots).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
