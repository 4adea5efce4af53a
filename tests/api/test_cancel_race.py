"""A cancel landing while a step runs, under gunicorn (several workers and threads): every
answer is a normal one (200, or 409 for a run already over), never a 5xx."""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.api import ADMIN_TOKEN
from tests.support.databases import empty_tables, migrated_sqlite
from tests.support.processes import ROOT, Proc, free_port, wait_until

RACES = 40
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SYNC = "/api/admin/sync/v2"


#: gunicorn's worker processes and threads per database. Both under several of each, as
#: README's production command: on a SQLite file the processes take turns on its one write
#: lock (WAL, BEGIN IMMEDIATE, a 30 s busy timeout, core/db.py), slower but never a 5xx.
DEPLOYMENTS = {"postgres": (3, 4), "sqlite": (3, 4)}


@pytest.fixture(params=sorted(DEPLOYMENTS))
def gunicorn(request: pytest.FixtureRequest, tmp_path: Path):
    workers, threads = DEPLOYMENTS[request.param]
    if request.param == "postgres":
        db_url = request.getfixturevalue("pg_database")
        empty_tables(db_url)
    else:
        db_url = migrated_sqlite(tmp_path / "race.db")
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": db_url,
        "TINY_API_URL": "sandbox",
        "TINY_MIN_INTERVAL": "0",
        "TINY_RETRY_BASE_SECONDS": "0.01",
        "SECRET_KEY": "race-test-secret-key-of-enough-length",
        "SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
        "SYNC_STEP_BUDGET_SECONDS": "0.3",
    }
    args = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread"]
    args += ["--threads", str(threads)]
    args += ["--timeout", "120"]  # as README's production command
    proc = Proc("gunicorn", [*args, "-b", f"127.0.0.1:{port}", "cli:wsgi_app()"], env, tmp_path)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/api/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            if proc.process.poll() is not None:
                raise RuntimeError(proc.output[-3000:]) from None
            return False

    wait_until(answers, 60, "gunicorn answering")
    yield base, proc
    proc.stop()


def test_a_cancel_during_a_step_never_answers_5xx(gunicorn):
    base, proc = gunicorn
    http = httpx.Client(base_url=base, headers=AUTH, timeout=60)
    made = http.post("/api/admin/companies", json={"name": "Race", "token": "tok-race"})
    assert made.status_code in (200, 201), made.text
    company_id = made.json()["company"]["id"] if "company" in made.json() else made.json()["id"]
    statuses: Counter[int] = Counter()
    bodies: list[str] = []
    final: Counter[str] = Counter()
    rng = random.Random(12)
    mid_step = 0
    for _ in range(RACES):
        created = http.post(f"{SYNC}/create", json={"companyId": company_id, "mode": "incremental"})
        assert created.status_code == 200, created.text
        run_id = created.json()["runId"]
        assert http.post(f"{SYNC}/start", json={"runId": run_id}).status_code == 200

        def call(route: str, delay: float, rid: str = run_id) -> None:
            threading.Event().wait(delay)
            answer = httpx.post(
                f"{base}{SYNC}/{route}", json={"runId": rid}, headers=AUTH, timeout=60
            )
            statuses[answer.status_code] += 1
            if answer.status_code >= 500:
                bodies.append(f"{route}: {answer.text}")

        threads = [
            threading.Thread(target=call, args=("step", 0)),
            threading.Thread(target=call, args=("step", rng.uniform(0, 0.02))),
            threading.Thread(target=call, args=("cancel", rng.uniform(0, 0.03))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        answer = http.get(f"{SYNC}/status", params={"runId": run_id}).json()
        status = answer["status"]
        if answer.get("tinyCalls"):  # a step was calling Tiny when the cancel came
            mid_step += 1
        if status == "RUNNING":  # the cancel came after the run ended? it cannot be RUNNING
            pytest.fail(f"run {run_id} still RUNNING after its cancel")
        final[status] += 1
    print("answers", dict(statuses), "final", dict(final), "canceled mid-step", mid_step)
    assert mid_step >= 1, "no cancel met a step in progress: the test raced nothing"
    assert not bodies, bodies[:3]
    assert sum(n for code, n in statuses.items() if code >= 500) == 0
    assert "Traceback" not in proc.output, proc.output[-3000:]
