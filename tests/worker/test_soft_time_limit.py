"""Celery's soft time limit lands inside a database call: the worker's engine survives it.

The limit is SoftTimeLimitExceeded raised from a signal handler (SIGUSR1 in a pool process),
wherever the task is. Here the signal is sent, as Celery's pool sends it, while a query of the
test's own is running on the server: psycopg is then waiting for the reply.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import Engine, text

from core.db import make_engine, make_session_factory
from core.settings import Settings
from tests.support.processes import wait_until
from worker import celery_init_app

MARK = "tinysync soft time limit test"


def _raise_soft_time_limit(*_: object) -> None:
    raise SoftTimeLimitExceeded()  # what billiard's soft_timeout_sighandler does


@pytest.fixture
def engine(pg_database: str) -> Iterator[Engine]:
    """The engine of a worker process's services: one connection, so a broken one shows."""
    services = SimpleNamespace(engine=make_engine(pg_database, pool_size=1, max_overflow=0))
    app = celery_init_app(Settings(celery_broker_url="redis://127.0.0.1:1/0"), lambda: services)
    engine: Engine = app.services.engine
    previous = signal.signal(signal.SIGUSR1, _raise_soft_time_limit)
    yield engine
    signal.signal(signal.SIGUSR1, previous)
    engine.dispose()


def _running_pid(observer: Engine) -> int | None:
    with observer.connect() as conn:
        return conn.scalar(
            text("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE :q"),
            {"q": f"%{MARK} query%"},
        )


def _interrupt_when_running(observer: Engine) -> threading.Thread:
    """Send SIGUSR1 to the main thread once the server runs the marked query."""
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        wait_until(lambda: _running_pid(observer), 30, "the query running")
        signal.pthread_kill(main, signal.SIGUSR1)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    return thread


def test_a_soft_time_limit_inside_a_query_propagates_as_itself_and_the_pool_stays_usable(
    engine, pg_database
):
    observer = make_engine(pg_database)
    sessions = make_session_factory(engine)
    watcher = _interrupt_when_running(observer)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            with sessions() as session:
                session.execute(text(f"SELECT pg_sleep(60) -- {MARK} query"))
                session.commit()
        watcher.join()
    finally:  # the server's backend would sleep on after its client let go
        with observer.connect() as conn:
            pid = _running_pid(observer)
            if pid is not None:
                conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
        observer.dispose()
    # The only pooled connection was cut mid-reply: the next session must get a sound one.
    with sessions() as session:
        assert session.scalar(text("SELECT 1")) == 1
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT 2")) == 2
