"""`tinysync company`: companies and their Tiny tokens (a token is never printed)."""

from __future__ import annotations

import sys

import typer
from rich.table import Table
from sqlalchemy import select

from cli.console import console, fail, guarded, load_settings
from cli.database import for_reading, for_writing
from core.companies import add_company, list_companies
from core.crypto import account_key
from core.models import Company

app = typer.Typer(help="Companies and their Tiny tokens.", no_args_is_help=True)


def _read_token() -> str:
    """The token from a hidden prompt (a terminal) or the first line of standard input."""
    if sys.stdin is not None and sys.stdin.isatty():
        token: str = typer.prompt("Tiny API token", hide_input=True, err=True)
        return token
    return (sys.stdin.readline() if sys.stdin is not None else "").strip()


@app.command("add")
def company_add(
    name: str = typer.Option(..., help="The company's name."),
    token: str | None = typer.Option(
        None,
        help="Its Tiny API token (stored encrypted). Omitted: asked for without echo, or read "
        "from standard input (`... company add --name X < token.txt`), kept out of the shell's "
        "history.",
    ),
) -> None:
    """Add a company; prints its id."""
    settings = load_settings()
    if token is None:
        token = _read_token()
        if not token:
            fail("no Tiny token given: pass --token, type it at the prompt, or pipe it in")
    services = for_writing(settings)
    with services.session_factory() as session:
        key = account_key(token.strip(), settings.secret_key)
        same = session.scalars(
            select(Company).where(Company.name == name.strip(), Company.tinyAccountKey == key)
        ).first()
        if same is not None:
            fail(f"company {same.name!r} with this token already exists: {same.id}")
        company = guarded(add_company, session, settings, name=name, token=token)
        session.commit()
        console.print(company.id)


@app.command("list")
def company_list() -> None:
    """List companies (never their tokens)."""
    services = for_reading(load_settings())
    table = Table()
    for column in ("id", "name", "active"):
        table.add_column(column, no_wrap=column == "id")
    with services.session_factory() as session:
        for company in list_companies(session):
            table.add_row(company.id, company.name, "yes" if company.active else "no")
    console.print(table)
