"""`tinysync company`: companies and their Tiny tokens (a token is never printed)."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.console import console, guarded, load_settings
from cli.database import for_reading, for_writing
from core.companies import add_company, list_companies

app = typer.Typer(help="Companies and their Tiny tokens.", no_args_is_help=True)


@app.command("add")
def company_add(
    name: str = typer.Option(..., help="The company's name."),
    token: str = typer.Option(..., help="Its Tiny API token (stored encrypted)."),
) -> None:
    """Add a company; prints its id."""
    settings = load_settings()
    services = for_writing(settings)
    with services.session_factory() as session:
        company = guarded(add_company, session, settings, name=name, token=token)
        session.commit()
        console.print(company.id)


@app.command("list")
def company_list() -> None:
    """List companies (never their tokens)."""
    services = for_reading(load_settings())
    table = Table()
    for column in ("id", "name", "active"):
        table.add_column(column)
    with services.session_factory() as session:
        for company in list_companies(session):
            table.add_row(company.id, company.name, "yes" if company.active else "no")
    console.print(table)
