"""Fixtures of the core tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The CLI's environment: a SQLite file in a temporary folder, the in-process sandbox."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TINY_API_URL", "sandbox")
    monkeypatch.setenv("TINY_MIN_INTERVAL", "0")
    monkeypatch.setenv("SECRET_KEY", "cli-secret")
    monkeypatch.setenv("COLUMNS", "250")
    return url
