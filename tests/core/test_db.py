"""The engine rides out a restart of a database it reached, and fails at once on a wrong URL."""

from __future__ import annotations

import time

import psycopg
import pytest

from core import db


def _connect_listener(engine):
    (listener,) = list(engine.dialect.dispatch.do_connect)
    return listener


class FlakyServer:
    """Stands in for psycopg's connect: answers, then refuses `down` times, then answers."""

    def __init__(self, down: int):
        self.down = down
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if 1 < self.calls <= 1 + self.down:
            raise psycopg.OperationalError("connection refused")
        return object()


def test_a_new_connection_waits_for_a_restarting_database_it_reached_before(monkeypatch):
    engine = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    server = FlakyServer(down=3)
    monkeypatch.setattr(engine.dialect, "connect", server)
    connect = _connect_listener(engine)

    assert connect(engine.dialect, None, (), {}) is not None  # reached once
    assert connect(engine.dialect, None, (), {}) is not None  # down three times, then back
    assert server.calls == 5


def test_a_database_that_stays_down_fails_after_the_patience(monkeypatch):
    engine = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(engine.dialect, "connect", FlakyServer(down=10_000))
    monkeypatch.setattr(db, "RECONNECT_PATIENCE_SECONDS", 0.3)
    connect = _connect_listener(engine)
    connect(engine.dialect, None, (), {})

    began = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        connect(engine.dialect, None, (), {})
    assert 0.1 < time.monotonic() - began < 2


def test_a_database_never_reached_fails_at_once():
    engine = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    began = time.monotonic()
    with pytest.raises(Exception, match="Connection refused|connection failed"):
        engine.connect()
    assert time.monotonic() - began < 2
    engine.dispose()
