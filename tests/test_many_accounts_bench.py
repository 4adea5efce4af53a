"""The many-accounts benchmark runs in its quick form and prints its whole report.

`python -m bench.many_accounts --quick` (12 companies on 12 accounts, 30 s) as a process from
the repository's root, as a person would: the documented `tinysync worker`, a private
redis-server, a fresh PostgreSQL database. No speed figure is asserted (the machine may be
loaded); the shape of the report and zero code 6 are.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.support.env import PG_ADMIN_URL, unavailable

ROOT = Path(__file__).resolve().parent.parent
LINES = (
    r"^12 companies on 12 accounts .* one `tinysync worker` \(\d+ threads\)",
    r"^calls (\d+) in [\d.]+ s; code 6: (\d+), code 11: (\d+)$",
    r"^worker RSS \d+ MiB",
    r"^most database connections of the worker \d+, most Redis clients \d+$",
    r"^slowest account's utilisation [\d.]+$",
    r"^utilisation by plan: 30/min [\d.]+, 60/min [\d.]+, 120/min [\d.]+$",
    r"^first Tiny call after start: median [\d.]+ s over 12 runs$",
    r"^fairness: longest wait from start to a run's first Tiny call [\d.]+ s$",
    r"^utilisation [\d.]+$",
)


def _servers() -> None:
    if shutil.which("redis-server") is None:
        unavailable("Redis (redis-server)", "it is not on PATH")
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        unavailable("PostgreSQL", exc)
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(300)
def test_the_quick_many_accounts_bench_reports_every_figure_and_no_code_6():
    _servers()
    result = subprocess.run(
        [sys.executable, "-m", "bench.many_accounts", "--quick"],
        cwd=ROOT,
        env={**os.environ, "TINYSYNC_BENCH_PG_URL": PG_ADMIN_URL},
        capture_output=True,
        text=True,
        timeout=280,
    )
    report = f"{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    lines = result.stdout.strip().splitlines()[-len(LINES) :]
    matches = [re.match(pattern, line) for pattern, line in zip(LINES, lines, strict=True)]
    assert all(matches), report
    calls, code6, code11 = (int(g) for g in matches[1].groups())  # type: ignore[union-attr]
    assert calls > 12 and code6 == 0 and code11 == 0, report
