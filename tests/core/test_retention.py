"""Retention: old logs and old runs go, each company's latest run stays whatever its age, and
an incremental run that finds nothing new writes a few lines."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner

from cli import app
from core.models import SyncRun, SyncRunLog, UiSession, utcnow
from core.retention import prune
from core.runs import add_log, create_run, list_logs, start_run
from core.sessions import open_session
from tests.support.services import new_company, step_until_done


def _run(services, company: str, *, age_days: float, logs: int = 3) -> str:
    """A finished run of `company`, `age_days` old, with `logs` lines of that age."""
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        start_run(session, run.id)
    step_until_done(services, run.id)
    then = utcnow() - timedelta(days=age_days)
    with services.session_factory() as session:
        for _ in range(logs):
            add_log(session, run.id, "info", "an old line")
        session.flush()
        row = session.get(SyncRun, run.id)
        row.createdAt = row.finishedAt = then
        for line in session.scalars(select(SyncRunLog).where(SyncRunLog.runId == run.id)):
            line.timestamp = then
        session.commit()
    return run.id


def _count(services, model, *where) -> int:
    with services.session_factory() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_prune_keeps_recent_rows_and_each_companys_latest_run(services, sandbox):
    a = new_company(services, sandbox, "tok-ret-a")
    b = new_company(services, sandbox, "tok-ret-b")
    ancient_a = _run(services, a, age_days=400)
    old_a = _run(services, a, age_days=100)
    recent_a = _run(services, a, age_days=1)
    only_b = _run(services, b, age_days=500)  # b's latest run: kept, whatever its age
    with services.session_factory() as session:
        pruned = prune(session, services.settings)
    assert pruned.runs == 1
    with services.session_factory() as session:
        left = set(session.scalars(select(SyncRun.id)))
    assert left == {old_a, recent_a, only_b}
    assert (
        ancient_a not in left and _count(services, SyncRunLog, SyncRunLog.runId == ancient_a) == 0
    )
    assert _count(services, SyncRunLog, SyncRunLog.runId == old_a) == 0  # 100 days > 90
    assert _count(services, SyncRunLog, SyncRunLog.runId == recent_a) > 0
    assert _count(services, SyncRunLog, SyncRunLog.runId == only_b) > 0
    assert pruned.logs > 0
    with services.session_factory() as session:
        again = prune(session, services.settings)
    assert (again.runs, again.logs) == (0, 0)


def test_active_runs_are_never_pruned(services, sandbox):
    company = new_company(services, sandbox, "tok-ret-active")
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        row = session.get(SyncRun, run.id)
        row.createdAt = utcnow() - timedelta(days=999)
        session.commit()
    with services.session_factory() as session:
        prune(session, services.settings.with_(sync_run_retention_days=1))
        assert session.get(SyncRun, run.id) is not None


def test_dead_ui_sessions_are_pruned(services):
    with services.session_factory() as session:
        open_session(session)
        open_session(session)
        session.commit()
        idle = session.scalars(select(UiSession)).first()
        idle.lastSeenAt = utcnow() - timedelta(days=2)
        session.commit()
        assert prune(session, services.settings).sessions == 1
    assert _count(services, UiSession) == 1


def test_the_prune_command_prints_what_it_deleted(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("TINY_API_URL", "sandbox")
    result = CliRunner().invoke(app, ["prune"])
    assert result.exit_code == 0, result.output
    assert "deleted 0 log line(s), 0 run(s), 0 session(s)" in result.output


def test_an_incremental_run_that_finds_nothing_new_writes_a_few_lines(services, sandbox):
    company = new_company(services, sandbox, "tok-quiet")
    _run(services, company, age_days=0, logs=0)  # the first run syncs everything
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        start_run(session, run.id)
    step_until_done(services, run.id)
    with services.session_factory() as session:
        lines, _ = list_logs(session, run.id, limit=100)
    messages = [line.message for line in reversed(lines)]
    # created, started, one line for each module that read its listing again (the open
    # positions and the window's paid bills, read whole every run; the stock balances
    # re-checked), finished: 8 measured on SQLite and PostgreSQL, not 15. Sales found nothing
    # new and says nothing.
    assert len(messages) <= 8, messages
    assert messages[0].startswith("Execução criada") and messages[-1].startswith(
        "Execução concluída (DONE)"
    )
    assert not any(m.startswith("Vendas verificadas") for m in messages)
    assert "Vendas 0" in messages[-1]  # every module's count, in the one last line
