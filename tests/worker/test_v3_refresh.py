"""One renewer per v3 account across processes, and beat keeping idle accounts' refresh
tokens alive: two worker processes needing a refresh at the same moment make exactly one
refresh call and both go on; beat refreshes a company whose refresh token is past half its
life, and leaves a fresh one alone."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import update

from core.models import Company, utcnow
from tests.support.processes import ROOT, wait_until
from tests.support.ui import serve
from tests.support.v3 import new_v3_company
from worker import celery_init_app
from worker.periodic import refresh_v3_tokens

TOKEN = "tok-v3-refresh"
REFRESHER = "tests.support.v3_refresher"


def _set(services, company_id: str, **values) -> None:
    with services.session_factory() as session:
        session.execute(update(Company).where(Company.id == company_id).values(**values))
        session.commit()


def _company(services, company_id: str) -> Company:
    with services.session_factory() as session:
        company = session.get(Company, company_id)
        assert company is not None
        return company


def test_two_worker_processes_needing_a_refresh_at_once_make_one_refresh_call(
    services, sandbox, db_url, tmp_path
):
    company, client = new_v3_company(services, sandbox, TOKEN)
    _set(services, company, v3AccessExpiresAt=utcnow() - timedelta(minutes=1))
    server, thread = serve(sandbox)
    base = f"http://127.0.0.1:{server.server_port}"
    go = tmp_path / "go"
    try:
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.v3_refresher",
                    db_url,
                    base,
                    company,
                    str(go),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        # Both are up and waiting (imports done, wired) before they are told to go together.
        wait_until(lambda: len(list(tmp_path.glob("go.ready.*"))) == 2, 120, "workers ready")
        go.touch()
        outputs = [worker.communicate(timeout=120) for worker in workers]
    finally:
        server.shutdown()
        thread.join(timeout=10)
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-2000:]
    answers = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert answers[0]["token"] == answers[1]["token"]
    assert all(answer["products"] > 0 for answer in answers)
    assert sandbox.oauth_counters(client)["refresh_token"] == 1
    assert not _company(services, company).needsReconnect


def test_beat_refreshes_a_pair_past_half_its_life_and_leaves_a_fresh_one(services, sandbox):
    due, due_client = new_v3_company(services, sandbox, TOKEN)
    fresh, fresh_client = new_v3_company(services, sandbox, TOKEN + "-2")
    now = utcnow()
    # Refreshed 20 hours ago, lapsing in 4: past half its day.
    _set(
        services,
        due,
        v3TokenRefreshedAt=now - timedelta(hours=20),
        v3RefreshExpiresAt=now + timedelta(hours=4),
    )
    celery = celery_init_app(services.settings, services_factory=lambda: services)
    outcome = refresh_v3_tokens(celery)
    assert outcome == {"refreshed": 1, "lost": 0}
    assert sandbox.oauth_counters(due_client)["refresh_token"] == 1
    assert sandbox.oauth_counters(fresh_client)["refresh_token"] == 0
    renewed = _company(services, due)
    assert renewed.v3RefreshExpiresAt is not None
    assert renewed.v3RefreshExpiresAt > now + timedelta(hours=20)


def test_beat_marks_a_company_whose_refresh_token_lapsed_as_needing_reconnect(services, sandbox):
    company, _client = new_v3_company(services, sandbox, TOKEN)
    sandbox.clock_skew = timedelta(days=2)
    _set(services, company, v3TokenRefreshedAt=utcnow() - timedelta(days=2))
    celery = celery_init_app(services.settings, services_factory=lambda: services)
    assert refresh_v3_tokens(celery) == {"refreshed": 0, "lost": 1}
    assert _company(services, company).needsReconnect
