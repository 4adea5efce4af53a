"""`python -m bench.drift` runs its three runs on a small account and ends with `mismatches N`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_drift_bench_prints_its_table_and_the_mismatches_left():
    done = subprocess.run(
        [sys.executable, "-m", "bench.drift", "--orders", "150", "--bills", "80"]
        + ["--products", "20", "--seed", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    runs = [line for line in lines if re.match(r"\| [123] ", line)]
    assert [line.split("|")[2].strip() for line in runs] == ["DONE", "DONE", "DONE"], lines
    churned = int(runs[0].split("|")[5].split()[0])
    assert churned > 0 and runs[1].split("|")[5].strip() == "0", runs
    assert lines[-1] == "mismatches 0", lines
    assert lines[-1] == f"mismatches {runs[2].split('|')[6].split()[0]}"
