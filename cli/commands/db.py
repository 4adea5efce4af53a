"""`tinysync db`: the database schema."""

from __future__ import annotations

import typer

from cli.console import console, load_settings
from cli.database import database_errors, safe_url
from core.db import make_engine
from core.migrate import upgrade

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations to DATABASE_URL."""
    settings = load_settings()
    with database_errors(settings.database_url):
        engine = make_engine(settings)
        upgrade(engine)
        engine.dispose()
    console.print(f"database at head: {safe_url(settings.database_url)}")
