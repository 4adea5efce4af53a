"""Fixtures for the sandbox's own tests: a fixed clock and an httpx client over the transport."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.sandbox_calls import GENEROUS, TOKEN, Api, Clock


@pytest.fixture
def clock() -> Clock:
    """A hand-moved clock at NOW."""
    return Clock()


@pytest.fixture
def sb(clock: Clock) -> Sandbox:
    """A sandbox with one small account with generous limits."""
    sandbox = Sandbox(clock=clock)
    sandbox.add_account(TOKEN, AccountSpec(orders=250, days=100, seed=None, **GENEROUS))
    return sandbox


@pytest.fixture
def http(sb: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client that reaches the sandbox in-process."""
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sandbox/api2") as client:
        yield client


@pytest.fixture
def api(http: httpx.Client) -> Api:
    """Service calls for TOKEN."""
    return Api(http)
