"""A faithful fake of Tiny ERP API v2, in-process (httpx transport) or as an HTTP server."""

from __future__ import annotations

from sandbox.app import Sandbox
from sandbox.changes import Change, ChangeLog, Churn
from sandbox.data import AccountSpec
from sandbox.faults import Faults
from sandbox.limits import Counters
from sandbox.oddities import ODD_DATES, ODD_IDS, ODD_MONEY, ODD_TEXT, ODD_VALUES
from sandbox.server import make_server, serve
from sandbox.transport import SandboxTransport
from sandbox.truth import Truth

__all__ = [
    "ODD_DATES",
    "ODD_IDS",
    "ODD_MONEY",
    "ODD_TEXT",
    "ODD_VALUES",
    "AccountSpec",
    "Change",
    "ChangeLog",
    "Churn",
    "Counters",
    "Faults",
    "Sandbox",
    "SandboxTransport",
    "Truth",
    "make_server",
    "serve",
]
