"""`tinysync sync` waits out Tiny's rate-limit pause asleep, not spinning a core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from cli.progress import waiting_line

ROOT = Path(__file__).resolve().parents[2]

#: Run in a child process: an account whose minute window is already full when the sync
#: starts (another program used it), so the first calls meet code 6 and the run must pause
#: for longer than a step may last; then the sync itself, timed in CPU and in wall clock.
SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import httpx
    from typer.testing import CliRunner
    from cli import app, shared_sandbox
    from sandbox import AccountSpec, SandboxTransport

    token = "tok-waiting"
    sandbox = shared_sandbox()
    sandbox.add_account(token, AccountSpec(
        orders=6, days=20, products=2, payables=4, receivables=4,
        rate_limit_calls=30, rate_limit_window_seconds=6.0,
    ))
    runner = CliRunner()
    added = runner.invoke(app, ["company", "add", "--name", "Espera", "--token", token])
    assert added.exit_code == 0, added.output
    company_id = added.output.strip()
    other = httpx.Client(transport=SandboxTransport(sandbox), base_url="http://sandbox.local")
    for _ in range(30):  # another program spends the account's whole window
        other.post("/api2/produtos.pesquisa.php", data={"token": token, "formato": "json"})
    cpu, wall = time.process_time(), time.monotonic()
    result = runner.invoke(app, ["sync", "--company", company_id])
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    code6 = sandbox.counters(token).by_code[6]
    print(json.dumps({"exit": result.exit_code, "cpu": cpu, "wall": wall,
                      "code6": code6, "output": result.output}))
    """
)


def test_a_sync_that_waits_out_a_code_6_pause_sleeps_through_it(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wait.db'}",
        "TINY_API_URL": "sandbox",
        "TINY_MIN_INTERVAL": "0",
        "TINY_RATE_LIMIT_BACKOFF_SECONDS": "4",
        "SYNC_STEP_BUDGET_SECONDS": "1",
        "SECRET_KEY": "cli-waiting-secret",
        "COLUMNS": "200",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["exit"] == 0, measured["output"]
    assert measured["code6"] >= 1, "the sync never met Tiny's limit: nothing was waited out"
    assert measured["wall"] > 4, "a pause of 4 s longer than the 1 s step was waited out"
    share = measured["cpu"] / measured["wall"]
    print(f"sync CPU share while waiting: {share:.1%} over {measured['wall']:.1f} s")
    assert share < 0.20, f"the sync used {share:.0%} of a core over {measured['wall']:.1f} s"


def test_the_waiting_line_says_how_long_in_whole_seconds():
    assert waiting_line(41.2) == "aguardando o limite do Tiny: 42 s"
    assert waiting_line(0.3) == "aguardando o limite do Tiny: 1 s"
