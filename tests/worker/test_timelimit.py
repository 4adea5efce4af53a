"""The thread pool's time limit: a module task's Tiny calls end by its soft time limit."""

from __future__ import annotations

import time

import httpx
import pytest
from celery.exceptions import SoftTimeLimitExceeded

from worker.timelimit import DeadlineTransport, seconds_left, time_limit


class Recorder(httpx.BaseTransport):
    """Answers 200, or waits out its read timeout and raises like a silent server."""

    def __init__(self, silent: bool = False):
        self.silent = silent
        self.timeouts: list[dict[str, float | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = dict(request.extensions["timeout"])
        self.timeouts.append(timeouts)
        if self.silent:
            time.sleep(timeouts["read"] or 0)
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"retorno": {"status": "OK"}})


def _client(inner: Recorder, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(transport=DeadlineTransport(inner), timeout=timeout)


def test_outside_a_task_the_calls_keep_their_own_timeouts():
    inner = Recorder()
    assert seconds_left() is None
    _client(inner).post("http://tiny/api2/pedidos.pesquisa.php")
    assert inner.timeouts == [{"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}]


def test_inside_a_task_every_timeout_is_cut_to_what_is_left_of_the_limit():
    inner = Recorder()
    with time_limit(5):
        _client(inner).post("http://tiny/api2/pedidos.pesquisa.php")
    assert all(0 < value <= 5 for value in inner.timeouts[0].values()), inner.timeouts


def test_a_call_that_would_answer_after_the_limit_raises_the_soft_time_limit():
    inner = Recorder(silent=True)
    began = time.monotonic()
    with time_limit(0.3), pytest.raises(SoftTimeLimitExceeded, match="pedido.obter.php"):
        _client(inner, timeout=600).post("http://tiny/api2/pedido.obter.php")
    assert time.monotonic() - began < 60  # not the call's own 600 s


def test_a_call_started_after_the_limit_is_not_sent():
    inner = Recorder()
    with time_limit(0), pytest.raises(SoftTimeLimitExceeded):
        _client(inner).post("http://tiny/api2/pedidos.pesquisa.php")
    assert inner.timeouts == []


def test_a_timeout_well_before_the_limit_stays_a_timeout():
    inner = Recorder(silent=True)
    with time_limit(600), pytest.raises(httpx.ReadTimeout):
        _client(inner, timeout=0.1).post("http://tiny/api2/pedidos.pesquisa.php")
