"""The worker's consumer reconnects after a broker restart that Celery's cleanup trips over."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from celery.utils.imports import symbol_by_name
from celery.worker.consumer import Consumer as CeleryConsumer

from core.settings import Settings
from worker import celery_init_app
from worker.consumer import Consumer


def test_the_worker_uses_the_tinysync_consumer():
    app = celery_init_app(Settings(celery_broker_url="redis://127.0.0.1:1/0"), lambda: None)
    consumer = symbol_by_name(app.conf.worker_consumer)
    assert consumer is Consumer and issubclass(consumer, CeleryConsumer)


class Lost:
    """A broker connection as Celery leaves it after collect(): its transport's link dropped."""

    def __init__(self) -> None:
        self.transport = SimpleNamespace(client=self)


def _consumer(connection: object) -> Consumer:
    consumer = Consumer.__new__(Consumer)  # the method needs nothing else of a started one
    consumer.connection = connection
    return consumer


def test_a_failed_cleanup_of_a_lost_connection_is_logged_and_its_messages_can_still_be_acked(
    monkeypatch, caplog
):
    lost = Lost()

    def trip(self, exc):
        self.connection.transport.client = None  # what collect() does
        self.connection = None
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    monkeypatch.setattr(CeleryConsumer, "on_connection_error_after_connected", trip)
    consumer = _consumer(lost)
    with caplog.at_level(logging.WARNING):
        consumer.on_connection_error_after_connected(ConnectionError("Connection refused"))
    assert "reconnecting anyway" in caplog.text
    assert consumer.connection is None  # the blueprint reconnects
    assert lost.transport.client is lost  # acks of the running modules reach Redis again


def test_any_other_failure_of_the_cleanup_still_surfaces(monkeypatch):
    def fail(self, exc):
        raise RuntimeError("something else")

    monkeypatch.setattr(CeleryConsumer, "on_connection_error_after_connected", fail)
    with pytest.raises(RuntimeError):
        _consumer(Lost()).on_connection_error_after_connected(ConnectionError())
