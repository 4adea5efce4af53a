"""One Alembic history builds the schema on SQLite and PostgreSQL; the seed's SQL runs on it."""

from __future__ import annotations

from sqlalchemy import inspect, text

from core.db import make_engine
from core.migrate import downgrade, upgrade
from core.models import Base
from core.runs import create_run, start_run
from tests.support.services import new_company, step_until_done

# The seed's two audit queries, verbatim (the run id replaces its 'xxx').
SEED_RUNS_SQL = """SELECT id, mode, status, "createdAt", "finishedAt"
FROM "SyncRun"
ORDER BY "createdAt" DESC
LIMIT 10;"""
SEED_LOGS_SQL = """SELECT timestamp, level, message, module
FROM "SyncRunLog"
WHERE "runId" = 'xxx'
ORDER BY timestamp DESC;"""


def test_the_migrations_create_every_table_of_the_models_and_go_back_down(db_url):
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    run_columns = {c["name"] for c in inspect(engine).get_columns("SyncRun")}
    assert {
        "id",
        "companyId",
        "mode",
        "startDate",
        "endDate",
        "status",
        "currentModule",
        "progressJson",
        "errorMessage",
        "createdAt",
        "startedAt",
        "finishedAt",
        "triggeredByUserId",
    } <= run_columns
    log_columns = {c["name"] for c in inspect(engine).get_columns("SyncRunLog")}
    assert {"id", "runId", "timestamp", "level", "message", "module", "metadata"} <= log_columns
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_the_seeds_audit_queries_run_verbatim_after_a_run(services, sandbox):
    company = new_company(services, sandbox, "tok-audit")
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        start_run(session, run.id)
    step_until_done(services, run.id)
    with services.engine.connect() as conn:
        runs = conn.execute(text(SEED_RUNS_SQL)).all()
        assert [(r.id, r.mode, r.status) for r in runs] == [(run.id, "incremental", "DONE")]
        logs = conn.execute(text(SEED_LOGS_SQL.replace("xxx", run.id))).all()
        assert logs[0].message.startswith("Execução concluída (DONE)")
        assert {r.module for r in logs} >= {"vw_vendas", "vw_estoque"}


def test_the_models_and_the_migrations_agree(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
