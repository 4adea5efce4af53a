"""Databases for tests and benchmarks: a fresh PostgreSQL database or a SQLite file, migrated
to head by the project's own migrations, and emptied between tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from core.db import make_engine
from core.migrate import upgrade
from core.models import Base


def migrate(url: str) -> str:
    """Bring the database at `url` to the head migration; returns `url`."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@contextmanager
def fresh_postgres(admin_url: str, prefix: str = "tinysync_test") -> Iterator[str]:
    """A new PostgreSQL database on the server of `admin_url`, migrated, dropped afterwards.

    Failing to reach the server raises `sqlalchemy.exc.OperationalError` before anything is
    created.
    """
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except BaseException:
        admin.dispose()
        raise
    try:
        yield migrate(admin_url.rsplit("/", 1)[0] + "/" + name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrated_sqlite(path: Path) -> str:
    """A SQLite database in the file `path`, migrated; returns its URL."""
    return migrate(f"sqlite:///{path}")


def empty_tables(url: str) -> None:
    """Delete every row of every table of the project (the schema stays)."""
    engine = make_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
    engine.dispose()
