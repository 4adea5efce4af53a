"""The command line: bad input gets one clear line and a non-zero exit, with nothing written."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, inspect, select, text
from typer.testing import CliRunner

from cli import app
from core.db import make_engine
from core.migrate import alembic_config
from core.models import Company, SyncRun
from tests.support.env import PG_ADMIN_URL, unavailable
from tests.support.services import fast_spec

runner = CliRunner()


def _count(url, model):
    engine = make_engine(url)
    with engine.connect() as conn:
        value = conn.scalar(select(func.count()).select_from(model))
    engine.dispose()
    return value


def test_company_add_prints_an_id_and_list_never_shows_the_token(env):
    added = runner.invoke(app, ["company", "add", "--name", "ACME", "--token", "secret-tok-1"])
    assert added.exit_code == 0, added.output
    company_id = added.output.strip()
    assert len(company_id) == 36
    listed = runner.invoke(app, ["company", "list"])
    assert "ACME" in listed.output and "secret-tok-1" not in listed.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--company", "00000000-0000-4000-8000-000000000000"], "not found"),
        (["--company", "nope"], "not a valid id"),
        (["--company", "{company}", "--month", "2024-13"], "does not exist"),
        (["--company", "{company}", "--month", "2999-01"], "in the future"),
    ],
)
def test_sync_with_bad_input_says_one_clear_line_and_writes_nothing(env, args, words):
    added = runner.invoke(app, ["company", "add", "--name", "ACME", "--token", "tok-x"])
    company_id = added.output.strip()
    args = [a.replace("{company}", company_id) for a in args]
    result = runner.invoke(app, ["sync", *args])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.output
    assert _count(env, SyncRun) == 0
    assert _count(env, Company) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "list"],
        ["runs", "show", "00000000-0000-4000-8000-000000000000"],
        ["company", "list"],
    ],
)
def test_a_read_only_command_on_a_database_not_created_says_so_and_creates_it_not(
    env, tmp_path, command
):
    result = runner.invoke(app, command)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "tinysync db upgrade" in lines[0], result.output
    assert not (tmp_path / "cli.db").exists()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["runs", "list"]).exit_code == 0


def test_a_read_only_command_on_an_empty_database_says_so_and_creates_no_table(env, tmp_path):
    sqlite3.connect(tmp_path / "cli.db").close()  # an empty database file
    result = runner.invoke(app, ["runs", "list"])
    assert result.exit_code != 0
    assert "has no tinysync schema yet: run `tinysync db upgrade`" in result.output
    engine = make_engine(env)
    assert inspect(engine).get_table_names() == []
    engine.dispose()


@pytest.fixture
def empty_pg_url(monkeypatch):
    """A PostgreSQL database that exists but was never migrated."""
    name = f"tinysync_test_cli_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server means "no PostgreSQL here"
        unavailable("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_runs_list_on_a_postgresql_database_not_migrated_creates_no_table(env, empty_pg_url):
    result = runner.invoke(app, ["runs", "list"])
    assert result.exit_code != 0
    assert "has no tinysync schema yet: run `tinysync db upgrade`" in result.output
    engine = make_engine(empty_pg_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def test_a_read_only_command_on_another_schema_revision_names_both_and_leaves_it(env):
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(env)
    with engine.begin() as conn:  # as a database migrated by another tinysync would be
        conn.execute(text("UPDATE alembic_version SET version_num = 'other_revision'"))
    result = runner.invoke(app, ["runs", "list"])
    with engine.connect() as conn:
        after = conn.scalar(text("SELECT version_num FROM alembic_version"))
    engine.dispose()
    assert result.exit_code != 0
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"at schema other_revision, this tinysync expects {head}" in result.output
    assert after == "other_revision"


def test_sync_runs_a_month_inline_and_runs_show_prints_its_log(env):
    from cli import shared_sandbox

    shared_sandbox().add_account("tok-cli-sync", fast_spec(orders=200, days=90, products=5))
    added = runner.invoke(app, ["company", "add", "--name", "ACME", "--token", "tok-cli-sync"])
    company_id = added.output.strip()
    from datetime import date

    today = date.today()
    month = f"{today:%Y-%m}"
    result = runner.invoke(app, ["sync", "--company", company_id, "--month", month])
    assert result.exit_code == 0, result.output
    assert "DONE" in result.output
    run_id = result.output.splitlines()[0].split()[-1]
    shown = runner.invoke(app, ["runs", "show", run_id])
    assert "Execução concluída (DONE)" in shown.output and "vw_vendas" in shown.output
    listed = runner.invoke(app, ["runs", "list"])
    assert run_id in listed.output
    canceled = runner.invoke(app, ["runs", "cancel", run_id])
    assert canceled.exit_code != 0 and "is already finished (DONE)" in canceled.output


def test_company_add_and_update_set_the_pace_of_its_tiny_account(env):
    added = runner.invoke(
        app, ["company", "add", "--name", "ACME", "--token", "tok-pace", "--calls-per-minute", "30"]
    )
    assert added.exit_code == 0, added.output
    company_id = added.output.strip()
    assert "30" in runner.invoke(app, ["company", "list"]).output
    updated = runner.invoke(app, ["company", "update", company_id, "--calls-per-minute", "90"])
    assert updated.exit_code == 0 and "90 calls a minute" in updated.output
    auto = runner.invoke(app, ["company", "update", company_id, "--calls-per-minute", "auto"])
    assert auto.exit_code == 0 and "the limit Tiny announces" in auto.output
    engine = make_engine(env)
    with engine.connect() as conn:
        assert conn.scalar(select(Company.tinyCallsPerMinute)) is None
    for value, words in (("700", "between 1 and 600"), ("fast", "whole number or 'auto'")):
        bad = runner.invoke(app, ["company", "update", company_id, "--calls-per-minute", value])
        assert bad.exit_code == 2 and words in bad.output, bad.output
    with engine.connect() as conn:
        assert conn.scalar(select(Company.tinyCallsPerMinute)) is None
    engine.dispose()
    missing = runner.invoke(
        app, ["company", "update", str(uuid.uuid4()), "--calls-per-minute", "30"]
    )
    assert missing.exit_code == 2 and "not found" in missing.output


def test_runs_cancel_on_the_command_line_is_notified_when_notify_on_is_all(env, monkeypatch):
    import json
    import os

    from core.db import make_session_factory
    from core.runs import create_run
    from core.settings import Settings
    from tests.core.test_notify import SECRET, Receiver
    from tests.support.processes import wait_until

    hook = Receiver([])
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("NOTIFY_ON", "all")
    try:
        added = runner.invoke(app, ["company", "add", "--name", "ACME", "--token", "tok-cancel"])
        assert added.exit_code == 0, added.output
        engine = make_engine(env)
        with make_session_factory(engine)() as session:
            settings = Settings.from_env(dict(os.environ), dotenv=False)
            run_id = create_run(
                session, settings, company_id=added.output.strip(), mode="incremental"
            ).id
        engine.dispose()

        canceled = runner.invoke(app, ["runs", "cancel", run_id])

        assert canceled.exit_code == 0 and "CANCELED" in canceled.output, canceled.output
        wait_until(lambda: hook.received, 30, "the cancel's notification")
        body = json.loads(hook.received[0][1])
        assert (body["runId"], body["status"]) == (run_id, "CANCELED")
    finally:
        hook.close()
