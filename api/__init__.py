"""The HTTP API and web UI of tinysync (Flask); `create_app` builds it."""

from __future__ import annotations

from api.app import create_app

__all__ = ["create_app"]
