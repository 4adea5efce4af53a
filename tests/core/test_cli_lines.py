"""The command line fails in one line, and its listings can be read and pasted back."""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
from typer.testing import CliRunner

from cli import app, shared_sandbox
from tests.support.env import PG_ADMIN_URL
from tests.support.services import fast_spec

runner = CliRunner()


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def one_line(result) -> str:
    found = lines(result.output)
    assert len(found) == 1, result.output
    return found[0]


@pytest.fixture
def synced(env):
    """A company named ACME with one finished run of this month; returns (company, run)."""
    token = f"tok-lines-{uuid.uuid4().hex[:8]}"
    shared_sandbox().add_account(token, fast_spec(orders=40, days=40, products=3))
    company_id = runner.invoke(app, ["company", "add", "--name", "ACME", "--token", token])
    company_id = company_id.output.strip()
    result = runner.invoke(
        app, ["sync", "--company", company_id, "--month", f"{date.today():%Y-%m}"]
    )
    assert result.exit_code == 0, result.output
    return company_id, result.output.splitlines()[0].split()[-1]


@pytest.mark.parametrize(
    ("url", "line"),
    [
        (
            "mysql://user@localhost/shop",
            "error: DATABASE_URL uses mysql://, which tinysync does not support: use "
            "sqlite:///FILE or postgresql://...",
        ),
        (
            "not a url",
            "error: DATABASE_URL 'not a url' is not a database URL: use sqlite:///FILE or "
            "postgresql://...",
        ),
    ],
)
@pytest.mark.parametrize("command", [["runs", "list"], ["company", "list"], ["db", "upgrade"]])
def test_an_unsupported_database_url_is_one_line(env, monkeypatch, url, line, command):
    monkeypatch.setenv("DATABASE_URL", url)
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert one_line(result) == line


@pytest.mark.parametrize("command", [["runs", "list"], ["db", "upgrade"], ["company", "list"]])
def test_an_unreachable_database_is_one_line(env, monkeypatch, command):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/tinysync")
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith(
        "error: cannot open the database postgresql://postgres@127.0.0.1:1/tinysync: "
    ), line
    assert "refused" in line.lower()


@pytest.mark.postgres
def test_an_unknown_postgresql_database_is_one_line(env, monkeypatch):
    from tests.support.env import unavailable

    try:
        import psycopg

        psycopg.connect(PG_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3).close()
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    name = f"tinysync_missing_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    monkeypatch.setenv("DATABASE_URL", url)
    result = runner.invoke(app, ["runs", "list"])
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith("error: cannot open the database postgresql+psycopg://"), line
    assert line.endswith(f'database "{name}" does not exist'), line


def test_runs_show_keeps_module_tags_and_prints_brasilia_time(synced):
    _, run_id = synced
    shown = runner.invoke(app, ["runs", "show", run_id])
    assert shown.exit_code == 0, shown.output
    tagged = [line for line in lines(shown.output) if " [vw_vendas] " in line]
    assert tagged, shown.output
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d -03 info  \[vw_vendas\] Vendas ", tagged[0])


def test_runs_list_prints_whole_ids_and_company_names_that_runs_show_accepts(synced):
    company_id, run_id = synced
    listed = runner.invoke(app, ["runs", "list"])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in lines(listed.output) if run_id in line)
    assert "ACME" in row and company_id[:8] not in row
    assert re.search(r"\d\d:\d\d:\d\d -03", row)
    by_prefix = runner.invoke(app, ["runs", "show", run_id[:8]])
    assert by_prefix.exit_code == 0 and f"run {run_id}" in by_prefix.output
    by_name = runner.invoke(app, ["runs", "list", "--company", "ACME"])
    assert run_id in by_name.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["runs", "list", "--limit", "0"], "error: --limit must be between 1 and 200, not 0"),
        (["runs", "list", "--limit", "-3"], "error: --limit must be between 1 and 200, not -3"),
        (["runs", "list", "--company", "Nobody"], "error: no such company: Nobody"),
        (
            ["runs", "list", "--company", "00000000-0000-4000-8000-000000000000"],
            "error: no such company: 00000000-0000-4000-8000-000000000000",
        ),
        (["runs", "show", "ffffffff"], "error: no run id starts with 'ffffffff'"),
        (
            ["runs", "show", "ab"],
            "error: 'ab' is not a run id (give the whole id, or its first 4+ characters)",
        ),
    ],
)
def test_bad_runs_arguments_are_one_line(synced, args, line):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert one_line(result) == line


def test_canceling_a_finished_run_says_it_is_finished(synced):
    _, run_id = synced
    result = runner.invoke(app, ["runs", "cancel", run_id])
    assert result.exit_code == 2
    assert one_line(result) == (
        f"error: run {run_id} is already finished (DONE): there is nothing to cancel"
    )


def test_company_add_reads_the_token_from_stdin_and_refuses_an_exact_duplicate(env):
    first = runner.invoke(app, ["company", "add", "--name", "ACME"], input="tok-stdin-1\n")
    assert first.exit_code == 0, first.output
    company_id = one_line(first)
    uuid.UUID(company_id)
    again = runner.invoke(app, ["company", "add", "--name", "ACME"], input="tok-stdin-1\n")
    assert again.exit_code == 2
    assert one_line(again) == f"error: company 'ACME' with this token already exists: {company_id}"
    other = runner.invoke(app, ["company", "add", "--name", "ACME", "--token", "tok-stdin-2"])
    assert other.exit_code == 0, other.output
    empty = runner.invoke(app, ["company", "add", "--name", "Vazia"], input="\n")
    assert empty.exit_code == 2
    assert one_line(empty) == (
        "error: no Tiny token given: pass --token, type it at the prompt, or pipe it in"
    )
