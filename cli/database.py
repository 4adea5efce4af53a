"""Opening the database from a command: it is brought to the latest schema first."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from cli.wiring import build
from core.migrate import upgrade
from core.services import Services
from core.settings import Settings


def safe_url(url: str) -> str:
    """The database URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the engine, not here
        return "(unparsable DATABASE_URL)"


def for_writing(settings: Settings) -> Services:
    """Services on a database brought to the latest schema first."""
    services = build(settings)
    upgrade(services.engine)
    return services
