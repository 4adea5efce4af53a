"""`tinysync company`: companies and their Tiny tokens (a token is never printed)."""

from __future__ import annotations

import sys

import typer
from rich.table import Table
from sqlalchemy import select

from cli.console import console, fail, guarded, load_settings
from cli.database import for_reading, for_writing
from core.companies import add_company, list_companies, set_pace
from core.crypto import account_key
from core.models import Company

CALLS_HELP = (
    "Calls a minute to pace its Tiny account to, 1..600, or 'auto' for the limit Tiny "
    "announces on every answer (x-limit-api)."
)
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
        help="v2: its Tiny API token (stored encrypted). Omitted: asked for without echo, or "
        "read from standard input (`... company add --name X < token.txt`), kept out of the "
        "shell's history.",
    ),
    api: str = typer.Option("v2", help="The Tiny API it is read through: v2 or v3."),
    client_id: str = typer.Option("", help="v3: the Tiny app's client id."),
    client_secret: str = typer.Option(
        "", help="v3: the Tiny app's client secret (stored encrypted)."
    ),
    calls_per_minute: str = typer.Option("auto", help=CALLS_HELP),
) -> None:
    """Add a company; prints its id (a v3 one is then connected in the web UI)."""
    pace = _calls_per_minute(calls_per_minute)
    settings = load_settings()
    if token is None and api == "v2":
        token = _read_token()
        if not token:
            fail("no Tiny token given: pass --token, type it at the prompt, or pipe it in")
    services = for_writing(settings)
    with services.session_factory() as session:
        if api == "v2" and token:
            key = account_key(token.strip(), settings.secret_key)
            same = session.scalars(
                select(Company).where(Company.name == name.strip(), Company.tinyAccountKey == key)
            ).first()
            if same is not None:
                fail(f"company {same.name!r} with this token already exists: {same.id}")
        company = guarded(
            add_company,
            session,
            settings,
            name=name,
            token=token,
            api_version=api,
            client_id=client_id,
            client_secret=client_secret,
            calls_per_minute=pace,
        )
        session.commit()
        console.print(company.id)


@app.command("update")
def company_update(
    company_id: str = typer.Argument(..., help="The company's id."),
    calls_per_minute: str = typer.Option(..., help=CALLS_HELP),
) -> None:
    """Change how a company's Tiny account is paced."""
    pace = _calls_per_minute(calls_per_minute)
    services = for_writing(load_settings())
    with services.session_factory() as session:
        company = guarded(set_pace, session, company_id, pace)
        session.commit()
        said = "the limit Tiny announces" if pace is None else f"{pace} calls a minute"
        console.print(f"{company.name}: paced to {said}", highlight=False)


def _calls_per_minute(value: str) -> int | None:
    if value.strip().lower() == "auto":
        return None
    try:
        return int(value)
    except ValueError:
        fail(f"--calls-per-minute must be a whole number or 'auto', not {value!r}")


@app.command("list")
def company_list() -> None:
    """List companies (never their tokens)."""
    services = for_reading(load_settings())
    table = Table()
    for column in ("id", "name", "active", "api", "client id", "state", "calls/min"):
        table.add_column(column, no_wrap=column == "id")
    with services.session_factory() as session:
        for company in list_companies(session):
            v3 = company.apiVersion == "v3"
            state = ""
            if v3:
                connected = "connected" if company.v3RefreshTokenEncrypted else "not connected"
                state = "precisa reconectar" if company.needsReconnect else connected
            pace = company.tinyCallsPerMinute
            table.add_row(
                company.id,
                company.name,
                "yes" if company.active else "no",
                company.apiVersion,
                company.v3ClientId or "" if v3 else "",
                state,
                "auto" if pace is None else str(pace),
            )
    console.print(table)
