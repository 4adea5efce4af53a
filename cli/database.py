"""Opening the database from a command: commands that write migrate it, commands that only
read refuse one that is not at the schema this tinysync expects, and say so in one line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError

from cli.console import fail
from cli.wiring import build
from core.db import normalize_url
from core.migrate import alembic_config, upgrade
from core.services import Services
from core.settings import Settings

#: The databases tinysync runs on (SQLAlchemy backend names).
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def safe_url(url: str) -> str:
    """The database URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the engine, not here
        return "(unparsable DATABASE_URL)"


def url_problem(url: str) -> str | None:
    """Why DATABASE_URL cannot name a database tinysync uses, or None when it can."""
    try:
        parsed = make_url(normalize_url(url))
    except ArgumentError:
        return f"DATABASE_URL {url!r} is not a database URL: use sqlite:///FILE or postgresql://..."
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        return (
            f"DATABASE_URL uses {parsed.drivername}://, which tinysync does not support: "
            "use sqlite:///FILE or postgresql://..."
        )
    return None


def _reason(exc: BaseException) -> str:
    """The driver's own words for a failed connection, on one line."""
    text = str(getattr(exc, "orig", None) or exc)
    text = re.sub(r"\s+", " ", text.split("(Background on this error")[0]).strip()
    return text[:300]


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn a database that cannot be opened into one line and an exit (no traceback)."""
    problem = url_problem(url)
    if problem:
        fail(problem)
    try:
        yield
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        fail(f"cannot open the database {safe_url(url)}: its driver is missing ({exc})")
    except (OperationalError, InterfaceError) as exc:  # unreachable, unknown, refused
        fail(f"cannot open the database {safe_url(url)}: {_reason(exc)}")


def schema_problem(engine: Engine) -> str | None:
    """Why this tinysync cannot read the database behind `engine`, or None if it is at head."""
    where = engine.url.render_as_string(hide_password=True)
    if _sqlite_file_missing(engine):  # connecting would create it
        return f"the database {where} does not exist yet: run `tinysync db upgrade`"
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with engine.connect() as conn:  # reads alembic_version only; creates nothing
        current = set(MigrationContext.configure(conn).get_current_heads())
    if not current:
        return f"the database {where} has no tinysync schema yet: run `tinysync db upgrade`"
    if current != heads:
        return (
            f"the database {where} is at schema {', '.join(sorted(current))}, this tinysync "
            f"expects {', '.join(sorted(heads))}: run `tinysync db upgrade`"
        )
    return None


def _sqlite_file_missing(engine: Engine) -> bool:
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return False
    return not Path(database).exists()


def for_writing(settings: Settings) -> Services:
    """Services on a database brought to the latest schema first."""
    with database_errors(settings.database_url):
        services = build(settings)
        upgrade(services.engine)
    return services


def for_reading(settings: Settings) -> Services:
    """Services on a database that is at the latest schema; one line and an exit if not."""
    with database_errors(settings.database_url):
        services = build(settings)
        problem = schema_problem(services.engine)
    if problem:
        services.close()
        fail(problem)
    return services
