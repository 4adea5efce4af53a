"""Celery's overhead per module: the same run inline and on a Celery worker, one process.

Both paths use the same services: a fresh PostgreSQL database (on the server of
TINYSYNC_BENCH_PG_URL, dropped afterwards), the sandbox in-process with no latency and no
pacing. Inline is the CLI's loop over `run_step`; Celery is the production chain (a task per
module, then the finaliser) on a worker thread (`start_worker`, solo pool) with a private
redis-server as the broker; the bench waits for the finaliser through a result backend, which
production does not configure, so the figure is if anything pessimistic. Runs alternate
between the two paths and the medians are compared; every run is a `period` run of the same
month, so each does the same work.

    .venv/bin/python -m bench.celery_overhead [--runs 15]

Last line: `overhead_ms_per_module 4.2`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from celery.contrib.testing.worker import start_worker

from core.companies import add_company
from core.modules import MODULE_KEYS
from core.ratelimit import NoRateLimiter
from core.runs import create_run, start_run
from core.services import Services, build_services
from core.settings import Settings
from core.steps import run_step
from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.databases import fresh_postgres
from tests.support.processes import RedisServer
from worker import TinySyncCelery, celery_init_app, enqueue_run

PG_ADMIN_URL = os.environ.get(
    "TINYSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TOKEN = "bench-overhead-token"


def new_run(services: Services, company_id: str, month: str) -> str:
    """A started period run of `month`."""
    with services.session_factory() as session:
        run = create_run(
            session, services.settings, company_id=company_id, mode="period", month=month
        )
        start_run(session, run.id)
        return run.id


def inline(services: Services, run_id: str) -> float:
    """Seconds to step the run to its end in this thread."""
    began = time.perf_counter()
    while run_step(services.session_factory, services.settings, services.client, run_id).has_more:
        pass
    return time.perf_counter() - began


def on_celery(celery: TinySyncCelery, run_id: str) -> float:
    """Seconds from sending the run's chain to its finaliser's answer."""
    began = time.perf_counter()
    status = enqueue_run(celery, run_id).get(timeout=60)["status"]
    elapsed = time.perf_counter() - began
    if status != "DONE":
        raise RuntimeError(f"run {run_id} ended {status}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="Runs per path (after a warm-up).")
    args = parser.parse_args()

    first = date.today().replace(day=1)
    month = f"{first - timedelta(days=1):%Y-%m}"
    with (
        tempfile.TemporaryDirectory() as workdir,
        fresh_postgres(PG_ADMIN_URL, prefix="tinysync_bench") as db_url,
    ):
        redis_server = RedisServer(Path(workdir)).start()
        settings = Settings(
            database_url=db_url,
            celery_broker_url=redis_server.url(0),
            tiny_api_url="sandbox",
            secret_key="bench-secret",
            tiny_max_enrich_per_run=10_000,
        )
        sandbox = Sandbox()
        limits = dict(rate_limit_calls=10**9, max_concurrent=10**6)
        spec = AccountSpec(orders=300, days=75, products=10, payables=40, receivables=40, **limits)
        sandbox.add_account(TOKEN, spec)
        services = build_services(
            settings, transport=SandboxTransport(sandbox), limiter=NoRateLimiter()
        )
        with services.session_factory() as session:
            company = add_company(session, settings, name="Bench", token=TOKEN).id
            session.commit()
        celery = celery_init_app(settings, lambda: services)
        celery.conf.update(result_backend=redis_server.url(1), task_ignore_result=False)
        times: dict[str, list[float]] = {"inline": [], "celery": []}
        try:
            with start_worker(celery, pool="solo", perform_ping_check=False):
                inline(services, new_run(services, company, month))  # warm-up: first sync
                on_celery(celery, new_run(services, company, month))
                for _ in range(args.runs):
                    times["inline"].append(inline(services, new_run(services, company, month)))
                    times["celery"].append(on_celery(celery, new_run(services, company, month)))
        finally:
            services.close()
            redis_server.stop()

    medians = {path: statistics.median(values) for path, values in times.items()}
    calls = sandbox.counters(TOKEN).calls
    print(f"runs per path: {args.runs}; Tiny calls in all: {calls}")
    for path, values in times.items():
        print(
            f"{path:>7}: median {medians[path] * 1000:7.1f} ms a run "
            f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )
    overhead = (medians["celery"] - medians["inline"]) / len(MODULE_KEYS) * 1000
    print(f"overhead_ms_per_module {overhead:.1f}")


if __name__ == "__main__":
    main()
