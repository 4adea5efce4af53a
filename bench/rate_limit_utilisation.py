"""Rate-limit utilisation: how close two workers sharing one Tiny account get to its pace.

Two `tinysync worker` processes (one task at a time each) sync two companies that share one
Tiny token, at TINY_MIN_INTERVAL=20 and TINY_CONCURRENCY=1, against the sandbox served over
HTTP in this process. The account lets through one call at a time and 51 calls in any second
(2% above the pace: calls leave 20 ms apart on Redis's clock but reach the server with a few
ms of network jitter, which at exactly 50 a second would tip one call in a hundred over the
window's edge), and answers code 6 or 11 beyond that; a code 6 costs the run
TINY_RATE_LIMIT_BACKOFF_SECONDS (60). The pacing is the Redis limiter the workers share; the
broker is a private redis-server, the database a fresh PostgreSQL one (on the server of
TINYSYNC_BENCH_PG_URL, dropped afterwards).

Utilisation is the wall time from sending both runs to both being DONE, divided by
(Tiny calls × interval): 1.00 would be every interval used. Target: at most 1.10, with no
code 6. The workers are warmed by a small sync each first, as long-lived workers are.

    .venv/bin/python -m bench.rate_limit_utilisation [--orders 250]

Last line: `utilisation 1.04`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path

from core.companies import add_company
from core.runs import create_run, get_run, start_run
from core.services import Services, build_services
from core.settings import Settings
from sandbox import AccountSpec, Sandbox
from tests.support.databases import fresh_postgres
from tests.support.deployment import sandbox_over_http
from tests.support.processes import RedisServer, start_worker, wait_until
from worker import TinySyncCelery, celery_init_app, enqueue_run

PG_ADMIN_URL = os.environ.get(
    "TINYSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TOKEN = "bench-shared-account"
WARM_UP_TOKEN = "bench-warm-up"
INTERVAL_MS = 20


def sync_together(
    services: Services, celery: TinySyncCelery, token: str
) -> tuple[list[str], float]:
    """Two companies of one Tiny account synced at once; their final statuses and the wall time."""
    settings = services.settings
    run_ids = []
    with services.session_factory() as session:
        for name in ("A", "B"):
            company = add_company(session, settings, name=f"{token} {name}", token=token)
            session.commit()
            run = create_run(session, settings, company_id=company.id, mode="incremental")
            start_run(session, run.id)
            run_ids.append(run.id)
    began = time.perf_counter()
    for run_id in run_ids:
        enqueue_run(celery, run_id)

    def finished() -> list[str] | None:
        with services.session_factory() as session:
            statuses = [get_run(session, run_id).status for run_id in run_ids]
        return None if "RUNNING" in statuses else statuses

    statuses = wait_until(finished, 300, "both runs finishing", interval=0.005)
    return statuses, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=250, help="Orders in the account.")
    args = parser.parse_args()

    sandbox = Sandbox()
    spec = AccountSpec(
        orders=args.orders,
        days=75,
        products=10,
        rate_limit_calls=1000 // INTERVAL_MS + 1,
        rate_limit_window_seconds=1.0,
        max_concurrent=1,
    )
    sandbox.add_account(TOKEN, spec)
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_postgres(PG_ADMIN_URL, prefix="tinysync_bench") as db_url,
        sandbox_over_http(sandbox) as tiny_url,
    ):
        workdir = Path(tmp)
        redis_server = RedisServer(workdir).start()
        env = {
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": redis_server.url(0),
            "TINY_API_URL": tiny_url,
            "SECRET_KEY": "bench-" + secrets.token_hex(24),
            "TINY_MIN_INTERVAL": str(INTERVAL_MS),
            "TINY_CONCURRENCY": "1",
            "TINY_MAX_ENRICH_PER_RUN": "10000",
            "SYNC_BEAT_INTERVAL_MINUTES": "0",
        }
        settings = Settings.from_env(env, dotenv=False)
        services = build_services(settings)
        celery = celery_init_app(settings, lambda: services)
        workers = [start_worker(env, workdir, name=f"bench{i}") for i in (1, 2)]
        try:
            # Long-lived workers are warm: one small sync each first (its own account).
            sandbox.add_account(WARM_UP_TOKEN, AccountSpec(orders=20, days=75, products=3))
            sync_together(services, celery, WARM_UP_TOKEN)
            statuses, wall = sync_together(services, celery, TOKEN)
        finally:
            for worker in workers:
                worker.stop()
            services.close()
            redis_server.stop()

    counters = sandbox.counters(TOKEN)
    ideal = counters.calls * INTERVAL_MS / 1000
    print(f"runs: {statuses}; Tiny calls: {counters.calls} (at {INTERVAL_MS} ms: {ideal:.2f} s)")
    print(
        f"wall time {wall:.2f} s; code 6 answers: {counters.by_code[6]}, "
        f"code 11 answers: {counters.by_code[11]}, most calls at once: {counters.max_in_flight}"
    )
    print(f"utilisation {wall / ideal:.3f}")


if __name__ == "__main__":
    main()
