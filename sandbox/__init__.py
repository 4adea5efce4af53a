"""A faithful fake of Tiny ERP API v2, in-process (httpx transport) or as an HTTP server."""

from __future__ import annotations

from sandbox.account import Truth
from sandbox.app import Sandbox
from sandbox.data import AccountSpec
from sandbox.faults import Faults
from sandbox.limits import Counters
from sandbox.server import make_server, serve
from sandbox.transport import SandboxTransport

__all__ = [
    "AccountSpec",
    "Counters",
    "Faults",
    "Sandbox",
    "SandboxTransport",
    "Truth",
    "make_server",
    "serve",
]
