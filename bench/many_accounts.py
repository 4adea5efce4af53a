"""Many accounts on one worker host: how much of their combined Tiny budget gets used.

N companies on N sandbox accounts (default 100), each account allowing its plan's calls per
60 s window (by default 60 a minute with one in ten at 30 and one in ten at 120; `--plans 60`:
all at 60) and answering code 6 past it. One worker host as the README documents it:
`tinysync worker`, nothing else on its command line (the thread pool, WORKER_CONCURRENCY
threads), against a private redis-server, a fresh PostgreSQL database (on the server of
TINYSYNC_BENCH_PG_URL, dropped afterwards) and the sandbox served over HTTP by this process.
A 12-month backfill of one more account is started first; then one period run per company,
all sent together. The runs are large enough to
outlast the measured window (`--seconds`); at its end they are canceled.

Each account is paced by the worker to its own plan, which the sandbox announces in
`x-limit-api` on every answer, less TINY_LIMIT_MARGIN (5%); TINY_MIN_INTERVAL (`--interval-ms`)
is only the pace of an account's first call. Utilisation is Σ calls × (60 s ÷ plan) ÷
(N × window) — against Tiny's budget itself, so 1.00 would be every call Tiny allows and the
margin alone caps it at 0.95. Printed:
calls, window, code 6/11, the worker's RSS (its processes summed, the most seen), its CPU, the
most database connections and Redis clients seen, the slowest account's utilisation, the
fairness figure (the longest wait from a run's `start` to its first Tiny call, while the
backfill runs) and, last, `utilisation X.XX`. Target: ≥ 0.9, 0 code 6, RSS ≤ 1.5 GB.

    .venv/bin/python -m bench.many_accounts [--companies 100] [--seconds 120] [--plans mix|60]
    .venv/bin/python -m bench.many_accounts --quick      # 12 companies, 30 s: the smoke test
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import psutil
import redis
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from core.companies import add_company
from core.runs import cancel_run, create_run, start_run
from core.services import Services, build_services
from core.settings import Settings
from sandbox import AccountSpec, Sandbox
from sandbox.server import AdminApp, _QuietHandler
from tests.support.databases import fresh_postgres
from tests.support.processes import Proc, RedisServer, tinysync
from worker import TinySyncCelery, celery_init_app, enqueue_run

PG_ADMIN_URL = os.environ.get(
    "TINYSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
WINDOW_SECONDS = 60.0
#: How the worker's database connections are told apart from the bench's own.
WORKER_APP_NAME = "tinysync-bench-worker"
PLAN_MIXES = {
    "60": [60],
    "mix": [60] * 8 + [30, 120],  # one in ten at 30 a minute, one in ten at 120
}


def allowed_ms(plan: int) -> float:
    """The ms between two calls Tiny allows an account of `plan` calls a minute."""
    return 60_000 / plan


class FirstCalls:
    """The sandbox's WSGI app, noting when each token's first call arrived."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.first: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        token = (parse_qs(body.decode("latin-1")).get("token") or [""])[0]
        if token and token not in self.first:
            with self._lock:
                self.first.setdefault(token, time.monotonic())
        return self.app(environ, start_response)


@dataclass
class Peaks:
    """The most seen, sampled every half second: worker RSS, DB connections, Redis clients."""

    rss_bytes: int = 0
    db_connections: int = 0
    redis_clients: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self, worker: Proc, db_url: str, redis_url: str) -> threading.Thread:
        """Sample in a thread until `stop()`."""
        engine = create_engine(db_url, pool_size=1)
        database = engine.url.database
        redis_client = redis.Redis.from_url(redis_url)

        def sample() -> None:
            root = psutil.Process(worker.process.pid)
            while not self._stop.wait(0.5):
                try:
                    procs = [root, *root.children(recursive=True)]
                    self.rss_bytes = max(self.rss_bytes, sum(p.memory_info().rss for p in procs))
                except psutil.Error:
                    continue
                with engine.connect() as conn:
                    used = conn.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = :db"
                            " AND application_name = :app"
                        ),
                        {"db": database, "app": WORKER_APP_NAME},
                    )
                self.db_connections = max(self.db_connections, int(used or 0))
                clients = int(redis_client.info("clients")["connected_clients"]) - 1
                self.redis_clients = max(self.redis_clients, clients)
                self.samples += 1
            engine.dispose()
            redis_client.close()

        thread = threading.Thread(target=sample, name="peaks", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def cpu_seconds(proc: Proc) -> float:
    """User + system CPU of a process and its children so far."""
    root = psutil.Process(proc.process.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def start_runs(
    services: Services, celery: TinySyncCelery, company_ids: list[str], **window: Any
) -> dict[str, float]:
    """Create and start a run per company, then send them all; when each was sent."""
    run_ids = {}
    with services.session_factory() as session:
        for company_id in company_ids:
            run = create_run(
                session, services.settings, company_id=company_id, mode="period", **window
            )
            start_run(session, run.id)
            run_ids[company_id] = run.id
    sent = {}
    for run_id in run_ids.values():
        enqueue_run(celery, run_id)
        sent[run_id] = time.monotonic()
    return sent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=100, help="Companies, one account each.")
    parser.add_argument("--seconds", type=float, default=120.0, help="The measured window.")
    parser.add_argument(
        "--plans",
        choices=sorted(PLAN_MIXES),
        default="mix",
        help="Plan mix: 'mix' (default: 60 a minute, one in ten at 30, one in ten at 120), '60'.",
    )
    parser.add_argument(
        "--interval-ms",
        type=int,
        default=None,
        help="TINY_MIN_INTERVAL, the pace before an account's first answer (default: tinysync's).",
    )
    parser.add_argument("--quick", action="store_true", help="12 companies, 30 s (smoke test).")
    args = parser.parse_args(argv)
    if args.quick:
        args.companies, args.seconds = 12, 30.0
    n = args.companies
    mix = PLAN_MIXES[args.plans]
    plans = {f"bench-acct-{i:03d}-{secrets.token_hex(3)}": mix[i % len(mix)] for i in range(n)}

    # Enough orders in last month that no run ends within the window (one call per order).
    calls_needed = int(args.seconds * 1000 / (60_000 / max(plans.values()))) + 60
    today = date.today()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    month = f"{last_month_end:%Y-%m}"
    orders = min(5000, calls_needed * 75 // 28)
    sandbox = Sandbox()
    for token, plan in plans.items():
        sandbox.add_account(
            token,
            AccountSpec(
                orders=orders,
                days=75,
                products=20,
                payables=20,
                receivables=20,
                rate_limit_calls=plan,
                rate_limit_window_seconds=WINDOW_SECONDS,
                max_concurrent=3,
            ),
        )
    backfill_token = f"bench-backfill-{secrets.token_hex(3)}"
    sandbox.add_account(
        backfill_token,
        AccountSpec(orders=5000, days=400, products=50, rate_limit_calls=60, max_concurrent=3),
    )

    first_calls = FirstCalls(AdminApp(sandbox))
    server = make_server("127.0.0.1", 0, first_calls, threaded=True, request_handler=_QuietHandler)
    serving = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
    serving.start()
    tiny_url = f"http://127.0.0.1:{server.server_port}/api2"
    me = psutil.Process()
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_postgres(PG_ADMIN_URL, prefix="tinysync_bench") as db_url,
    ):
        workdir = Path(tmp)
        redis_server = RedisServer(workdir).start()
        env = {
            "DATABASE_URL": f"{db_url}?application_name={WORKER_APP_NAME}",
            "CELERY_BROKER_URL": redis_server.url(0),
            "TINY_API_URL": tiny_url,
            "SECRET_KEY": "bench-" + secrets.token_hex(24),
            **({"TINY_MIN_INTERVAL": str(args.interval_ms)} if args.interval_ms else {}),
            "TINY_CONCURRENCY": "1",
            "TINY_MAX_ENRICH_PER_RUN": "10000",
            "SYNC_BEAT_INTERVAL_MINUTES": "0",
        }
        settings = Settings.from_env(env, dotenv=False)
        services = build_services(settings)
        celery = celery_init_app(settings, lambda: services)
        # The worker exactly as the README starts it.
        worker = tinysync("worker", ["worker"], env, workdir)
        peaks = Peaks()
        try:
            worker.wait_for(" ready.", timeout=120)
            companies: dict[str, str] = {}
            with services.session_factory() as session:
                for token in [backfill_token, *plans]:
                    company = add_company(session, settings, name=f"Empresa {token}", token=token)
                    companies[token] = company.id
                session.commit()
            watcher = peaks.watch(worker, db_url, redis_server.url(0))
            worker_cpu0, bench_cpu0 = cpu_seconds(worker), me.cpu_times()
            backfill = start_runs(
                services,
                celery,
                [companies[backfill_token]],
                start_date=(today - timedelta(days=365)).isoformat(),
                end_date=today.isoformat(),
            )
            time.sleep(2.0)  # the backfill is under way when the others start
            sandbox.reset_counters()
            began = time.monotonic()
            sent = start_runs(services, celery, [companies[t] for t in plans], month=month)
            time.sleep(max(0.0, began + args.seconds - time.monotonic()))
            window = time.monotonic() - began
            per_token = {token: sandbox.counters(token) for token in plans}
            worker_cpu = cpu_seconds(worker) - worker_cpu0
            bench_cpu = sum(me.cpu_times()[:2]) - sum(bench_cpu0[:2])
            with services.session_factory() as session:
                for run_id in [*sent, *backfill]:
                    cancel_run(session, run_id, reason="bench over")
            peaks.stop()
            watcher.join(timeout=10)
        finally:
            peaks.stop()
            worker.stop()
            services.close()
            redis_server.stop()
            server.shutdown()
            server.server_close()

    token_of_run = dict(zip(sent, plans, strict=True))
    waits = [
        first_calls.first[token_of_run[run_id]] - at
        for run_id, at in sent.items()
        if token_of_run[run_id] in first_calls.first
    ]
    never = n - len(waits)
    calls = sum(c.calls for c in per_token.values())
    code6 = sum(c.by_code[6] for c in per_token.values())
    code11 = sum(c.by_code[11] for c in per_token.values())
    allowed = {t: allowed_ms(plan) for t, plan in plans.items()}
    used = {t: c.calls * allowed[t] / 1000 / window for t, c in per_token.items()}
    slowest = min(used.values())
    utilisation = sum(used.values()) / n
    load = os.getloadavg()
    print(
        f"{n} companies on {n} accounts (plans {args.plans}: "
        f"{', '.join(f'{p}/min' for p in sorted(set(plans.values())))}), "
        f"each paced to its x-limit-api less {settings.tiny_limit_margin:.0%}, "
        f"one `tinysync worker` ({settings.worker_concurrency} threads), a backfill beside them"
    )
    print(f"calls {calls} in {window:.1f} s; code 6: {code6}, code 11: {code11}")
    print(
        f"worker RSS {peaks.rss_bytes / 2**20:.0f} MiB (most seen, {peaks.samples} samples); "
        f"CPU: worker {worker_cpu:.1f} s, bench process (sandbox server) {bench_cpu:.1f} s "
        f"in {window:.0f} s; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(
        f"most database connections of the worker {peaks.db_connections}, "
        f"most Redis clients {peaks.redis_clients}"
    )
    print(f"slowest account's utilisation {slowest:.2f}")
    by_plan = {
        plan: sum(used[t] for t, p in plans.items() if p == plan)
        / sum(1 for p in plans.values() if p == plan)
        for plan in sorted(set(plans.values()))
    }
    print("utilisation by plan: " + ", ".join(f"{p}/min {u:.2f}" for p, u in by_plan.items()))
    waits.sort()
    median = waits[len(waits) // 2] if waits else float("nan")
    print(f"first Tiny call after start: median {median:.2f} s over {len(waits)} runs")
    print(
        f"fairness: longest wait from start to a run's first Tiny call "
        f"{max(waits) if waits else float('nan'):.2f} s"
        + (f" ({never} run(s) made no call)" if never else "")
    )
    print(f"utilisation {utilisation:.2f}")


if __name__ == "__main__":
    main()
