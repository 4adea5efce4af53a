"""Peak memory of a sync: 200,000 orders vs 50,000 from the sandbox (the ratio should be ~1).

Each size runs in a child process of this one (peak RSS only grows within a process), through
the real path: the in-process sandbox, the Tiny client, `run_step` until the run is DONE, on
SQLite (or --database-url). Prints both peaks and, last, the ratio 200k/50k.

    .venv/bin/python -m bench.memory [--large 200000] [--small 50000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(orders: int, database_url: str) -> None:
    """Sync `orders` orders and print a JSON line with the peak RSS and what was stored."""
    from sqlalchemy import func, select

    from core.companies import add_company
    from core.migrate import upgrade
    from core.models import SalesOrder
    from core.runs import create_run, start_run
    from core.services import build_services
    from core.settings import Settings
    from core.steps import run_step
    from sandbox import AccountSpec, Sandbox, SandboxTransport

    sandbox = Sandbox()
    sandbox.add_account(
        "tok-mem",
        AccountSpec(
            orders=orders,
            days=365,
            products=50,
            payables=500,
            receivables=500,
            rate_limit_calls=10**9,
            max_concurrent=10**6,
        ),
    )
    settings = Settings(
        database_url=database_url,
        tiny_api_url="sandbox",
        tiny_min_interval_ms=0,
        secret_key="bench",
    )
    services = build_services(settings, transport=SandboxTransport(sandbox))
    upgrade(services.engine)
    today = date.today()
    with services.session_factory() as session:
        company = add_company(session, settings, name="mem", token="tok-mem")
        session.commit()
        run = create_run(
            session,
            settings,
            company_id=company.id,
            mode="period",
            start_date=(today - timedelta(days=364)).isoformat(),
            end_date=today.isoformat(),
        )
        start_run(session, run.id)
    started = time.perf_counter()
    while True:
        result = run_step(services.session_factory, settings, services.client, run.id)
        if not result.has_more:
            break
    elapsed = time.perf_counter() - started
    with services.session_factory() as session:
        stored = session.scalar(select(func.count()).select_from(SalesOrder))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "orders": orders,
                "stored": stored,
                "status": result.status,
                "peak_mib": peak_kib / 1024,
                "seconds": elapsed,
            }
        )
    )


def measure(orders: int, database_url: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/mem.db"
        out = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--child", str(orders), "--database-url", url],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.database_url)
        return
    small = measure(args.small, args.database_url)
    large = measure(args.large, args.database_url)
    for r in (small, large):
        print(
            f"{r['orders']:>7} orders: {r['status']}, {r['stored']} stored, "
            f"peak RSS {r['peak_mib']:.1f} MiB, {r['seconds']:.1f} s "
            f"({r['stored'] / r['seconds']:,.0f} orders/s)"
        )
    print(f"ratio {large['peak_mib'] / small['peak_mib']:.2f}")


if __name__ == "__main__":
    main()
