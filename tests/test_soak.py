"""The short soak passes: the real parts under faults, worker kills, a Redis and a PostgreSQL
restart, bad input, wrong credentials against every hardened door (revoked and expired
sessions, throttled guessing, private metrics, placeholder secrets, a cancel racing a step)
and pollers at once, with every must-be-zero figure at zero.

It runs `python -m bench.soak --short` as a process from the repository's root, as CI and a
person would. It needs `redis-server` and PostgreSQL's server binaries (it starts private ones
it may restart): on a laptop without them it skips; under CI=true it fails.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak_hardening import CASES as HARDENING_CASES
from tests.support.env import unavailable

ROOT = Path(__file__).resolve().parent.parent
SOAK_SECONDS = 330  # about 2 minutes on a quiet machine; CI machines are slower
MUST_BE_ZERO = (
    "stuck",
    "lost",
    "duplicated",
    "differing",
    "code-6",
    "API 5xx",
    "unauthenticated data",
    "token leaks",
    "died on their own",
    "hardening failures",
)
#: The hardened doors the soak tries under the load (bench/soak_hardening.py): each must have
#: been tried, and none may have let data out (`unauthenticated data` above).
TRIED = (*HARDENING_CASES, "placeholder deployments refused")


def _binaries() -> None:
    if shutil.which("redis-server") is None:
        unavailable("Redis (redis-server)", "it is not on PATH")
    from bench.soak_parts import Unavailable, _pg_bindir

    try:
        _pg_bindir()
    except Unavailable as exc:
        unavailable("PostgreSQL's server binaries (initdb, pg_ctl)", exc)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("a 'postgres' user to run initdb as (root cannot)", "there is none")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(SOAK_SECONDS + 60)
def test_the_short_soak_passes_with_every_must_be_zero_figure_at_zero():
    _binaries()
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--short"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=SOAK_SECONDS,
    )
    if result.returncode == 3:  # the soak found a part missing
        unavailable("what the soak needs", result.stderr.strip().splitlines()[-1])
    report = f"{result.stdout[-8000:]}\n--- stderr\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("soak passed"), report
    for figure in MUST_BE_ZERO:
        found = re.search(rf"{re.escape(figure)} (\d+)", summary)
        assert found and found.group(1) == "0", (figure, summary)
    for case in TRIED:
        found = re.search(rf"{re.escape(case)} (\d+)", summary)
        assert found and int(found.group(1)) >= 1, (case, summary)
    kills = re.search(r"worker kills survived (\d+)/(\d+)", summary)
    assert kills and kills.group(1) == kills.group(2) and int(kills.group(2)) >= 3, summary
