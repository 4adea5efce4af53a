"""`tinysync secrets`: re-encrypting the stored Tiny tokens after SECRET_KEY changed."""

from __future__ import annotations

import typer

from cli.console import console, guarded, load_settings
from cli.database import for_writing
from core.companies import rotate_tokens

app = typer.Typer(help="Secrets at rest.", no_args_is_help=True)


@app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored Tiny token under SECRET_KEY (old keys in SECRET_KEY_FALLBACKS).

    Set the new SECRET_KEY, move the old one to SECRET_KEY_FALLBACKS, run this, then drop
    the fallback once every process runs with the new key.
    """
    settings = load_settings()
    services = for_writing(settings)
    with services.session_factory() as session:
        rotated, current = guarded(rotate_tokens, session, settings)
        session.commit()
    console.print(f"{rotated} token(s) re-encrypted under SECRET_KEY, {current} already current")
