"""Polling benchmark: many concurrent pollers against the status route (its 200 and its 304
path) and against a trivial JSON route, on the same gunicorn server, in one run.

    .venv/bin/python -m bench.poll_status [--pollers 64] [--seconds 5] [--workers 4]
                                          [--threads 8] [--database postgres|sqlite]

The run being polled is prepared in-process (a whole run against a small in-process sandbox)
in a fresh database: a new PostgreSQL database on the server of TINYSYNC_BENCH_PG_URL
(default: the local one tests use), dropped afterwards, or a SQLite file. The server only
reads it. Pollers are threads with keep-alive httpx clients, spread over a few
processes so the client's GIL is not what gets measured. The last line is the ratio of the
status route's requests/s (200 path) to the trivial route's: `ratio 0.71`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx

from tests.support.databases import fresh_postgres, migrated_sqlite
from tests.support.processes import ROOT, free_port

ADMIN_TOKEN = "bench-admin-token"
TINY_TOKEN = "bench-tiny-token"
SERVER_START_SECONDS = 30.0
PG_ADMIN_URL = os.environ.get(
    "TINYSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Phase:
    """One measured phase: what was polled and how it went."""

    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        """The q-th latency percentile in milliseconds."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @classmethod
    def merge(cls, phases: list[Phase]) -> Phase:
        """The phases of every round as one."""
        return cls(
            phases[0].name,
            sum(p.requests for p in phases),
            sum(p.errors for p in phases),
            sum(p.seconds for p in phases),
            [ms for p in phases for ms in p.latencies_ms],
        )

    def line(self) -> str:
        """A report line."""
        return (
            f"{self.name:<22} {self.rate:9.1f} req/s   p50 {self.percentile(50):7.2f} ms   "
            f"p99 {self.percentile(99):7.2f} ms   errors {self.errors}"
        )


def main() -> None:
    """Prepare a run, start gunicorn, poll three routes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pollers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0, help="per phase, all rounds")
    parser.add_argument("--rounds", type=int, default=2, help="phases alternate this often")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="gthread threads per worker")
    parser.add_argument("--processes", type=int, default=2, help="poller processes")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="tinysync-bench-") as tmp,
        fresh_database(args.database, Path(tmp)) as url,
    ):
        run_id, log_lines = prepare_run(url)
        port = free_port()
        server = start_gunicorn(url, port, args.workers, args.threads, Path(tmp) / "gunicorn.log")
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base, server)
            status_url = f"{base}/api/admin/sync/v2/status?runId={run_id}"
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            first = httpx.get(status_url, headers=auth)
            first.raise_for_status()
            etag = first.headers["ETag"]
            print(
                f"server: gunicorn {args.workers} workers x {args.threads} threads (gthread), "
                f"{args.database}, one run ({log_lines} log lines, "
                f"{len(first.content)} bytes of status)"
            )
            print(
                f"pollers: {args.pollers} threads in {args.processes} processes, "
                f"{args.seconds:g} s per phase in {args.rounds} rounds, "
                f"{os.cpu_count()} CPUs shared with the server"
            )
            poll("warm-up", status_url, auth, 200, args, seconds=1.0)
            # Alternating the phases spreads any drift of the machine over all three.
            rounds = [
                (
                    poll("trivial GET /api/ping", f"{base}/api/ping", {}, 200, args),
                    poll("status 200", status_url, auth, 200, args),
                    poll("status 304", status_url, {**auth, "If-None-Match": etag}, 304, args),
                )
                for _ in range(args.rounds)
            ]
            trivial, full, cached = (
                Phase.merge(list(phases)) for phases in zip(*rounds, strict=True)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    for phase in (trivial, full, cached):
        print(phase.line())
    print(f"ratio 304/trivial {cached.rate / trivial.rate:.2f}")
    print(f"ratio {full.rate / trivial.rate:.2f}")


@contextmanager
def fresh_database(kind: str, tmp: Path) -> Iterator[str]:
    """The URL of an empty, migrated database, removed afterwards."""
    if kind == "sqlite":
        yield migrated_sqlite(tmp / "bench.db")
        return
    with fresh_postgres(PG_ADMIN_URL, prefix="tinysync_bench_poll") as url:
        yield url


def prepare_run(url: str) -> tuple[str, int]:
    """Migrate the database and run one whole sync in-process; returns (run id, log lines)."""
    from core.companies import add_company
    from core.runs import create_run, list_logs, start_run
    from core.services import build_services
    from core.settings import Settings
    from core.steps import run_step
    from sandbox import AccountSpec, Sandbox, SandboxTransport

    sandbox = Sandbox()
    sandbox.add_account(
        TINY_TOKEN,
        AccountSpec(orders=60, days=60, products=10, rate_limit_calls=10**6, max_concurrent=100),
    )
    settings = Settings(
        database_url=url, tiny_api_url="sandbox", tiny_min_interval_ms=0, secret_key="bench"
    )
    services = build_services(settings, transport=SandboxTransport(sandbox))
    last_month = date.today().replace(day=1) - timedelta(days=1)
    with services.session_factory() as session:
        company = add_company(session, settings, name="Bench Ltda", token=TINY_TOKEN)
        session.commit()
        run = create_run(
            session, settings, company_id=company.id, mode="period", month=f"{last_month:%Y-%m}"
        )
        start_run(session, run.id)
    while run_step(services.session_factory, settings, services.client, run.id).has_more:
        pass
    with services.session_factory() as session:
        lines = len(list_logs(session, run.id, limit=500)[0])
    services.close()
    return run.id, lines


def start_gunicorn(url: str, port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    """gunicorn serving `cli:wsgi_app()`, as in production, on the loopback interface."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TINY_API_URL": "sandbox",
        "SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": "bench-" + secrets.token_hex(24),
    }
    env.pop("CELERY_BROKER_URL", None)
    command = [
        sys.executable, "-m", "gunicorn",
        "-w", str(workers), "-k", "gthread", "--threads", str(threads),
        "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        "cli:wsgi_app()",
    ]  # fmt: skip
    output = log.open("w")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


def wait_until_up(base: str, server: subprocess.Popen) -> None:
    """Wait for the server to answer, or fail with its exit code."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with code {server.returncode}")
        try:
            if httpx.get(f"{base}/api/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def poll(
    name: str,
    url: str,
    headers: dict[str, str],
    expected: int,
    args: argparse.Namespace,
    *,
    seconds: float | None = None,
) -> Phase:
    """Run the pollers against one URL for one phase."""
    duration = args.seconds / args.rounds if seconds is None else seconds
    per_process = [args.pollers // args.processes] * args.processes
    for i in range(args.pollers % args.processes):
        per_process[i] += 1
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        results = list(
            pool.map(
                _poll_process,
                [url] * args.processes,
                [headers] * args.processes,
                [expected] * args.processes,
                per_process,
                [duration] * args.processes,
            )
        )
    latencies = [ms for ok, _, _ in results for ms in ok]
    errors = sum(errors for _, errors, _ in results)
    elapsed = max(seconds for _, _, seconds in results)
    return Phase(name, len(latencies), errors, elapsed, latencies)


def _poll_process(
    url: str, headers: dict[str, str], expected: int, threads: int, seconds: float
) -> tuple[list[float], int, float]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    # Clients are built (and connected) before the clock starts: only polling is measured.
    ready = threading.Barrier(threads + 1)
    go = threading.Event()
    window: list[float] = []

    def poller(index: int) -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            ready.wait()
            go.wait()
            deadline = window[1]
            while (began := time.perf_counter()) < deadline:
                try:
                    ok = client.get(url).status_code == expected
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies[index].append((time.perf_counter() - began) * 1000)
                else:
                    errors[index] += 1

    workers = [threading.Thread(target=poller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    ready.wait()
    start = time.perf_counter()
    window[:] = [start, start + seconds]
    go.set()
    for worker in workers:
        worker.join()
    # Requests in flight at the deadline finish after it: divide by the real elapsed time.
    return [ms for per in latencies for ms in per], sum(errors), time.perf_counter() - start


if __name__ == "__main__":
    main()
