"""`tinysync demo`: two months synced, totals that add up, the right wording on every run."""

from __future__ import annotations

import re

from sqlalchemy import select
from typer.testing import CliRunner

from cli import app
from core.db import make_engine
from core.models import SyncRun

runner = CliRunner()


def _count(url, stmt):
    engine = make_engine(url)
    with engine.connect() as conn:
        value = conn.scalar(stmt)
    engine.dispose()
    return value


def test_three_demo_runs_two_months_totals_that_add_up_and_the_right_wording(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'tinysync.db'}"
    monkeypatch.chdir(tmp_path)
    for name in ("TINY_API_URL", "TINY_MIN_INTERVAL", "TINY_MIN_INTERVAL_MS", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    first = runner.invoke(app, ["demo", "--orders", "200"])
    assert first.exit_code == 0, first.output
    assert "this month and the previous one" in first.output
    run = _count(url, select(SyncRun.startDate).order_by(SyncRun.createdAt))
    assert run.day == 1 and "01/" + f"{run:%m/%Y}" in first.output  # from the previous month's 1st
    counts = {
        label.strip(): int(n)
        for label, n in re.findall(r"│ ([a-z ()]+?)\s+│\s+(\d+) │", first.output)
    }

    def processed(label: str) -> int:
        found = re.search(rf"│ {re.escape(label)}\s+│\s+done │\s+(\d+) │", first.output)
        assert found, first.output
        return int(found.group(1))

    # The open-bill modules list aberto and parcial bills: the stored rows add up to them.
    assert counts["payables (open)"] + counts["payables (partly paid)"] == processed(
        "Contas a pagar"
    )
    assert counts["receivables (open)"] + counts["receivables (partly paid)"] == processed(
        "Contas a receber (posição)"
    )
    first_calls = int(re.search(r"This run made (\d+) Tiny calls", first.output).group(1))

    second = runner.invoke(app, ["demo", "--orders", "200"])
    assert second.exit_code == 0, second.output
    second_calls = int(re.search(r"incremental run made (\d+) Tiny calls", second.output).group(1))
    assert f"the first run made {first_calls}." in second.output
    third = runner.invoke(app, ["demo", "--orders", "200"])
    assert third.exit_code == 0, third.output
    assert f"the previous run made {second_calls}, the first {first_calls}." in third.output
