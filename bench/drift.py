"""Drift: how far the local copy is from Tiny after runs that page through data while it moves.

A sandbox account with churn (bills paid, partly paid, cancelled and deleted; orders cancelled,
deleted and added inside the month; stock moved; products deactivated) changes while the runs
read it. The sequence:

1. a period run of the month, churn on;
2. churn off; an incremental run;
3. a period run of the month.

For each run the table gives the changes Tiny's data went through during it
(`Sandbox.changes`) and the mismatches left after it (`tests.support.truth.mismatches`: the
month's orders and bills, the whole open position, the products). The last line is exactly
`mismatches N`, N after the last run: 0 means the copy is what Tiny says.

    .venv/bin/python -m bench.drift [--orders 900] [--bills 600] [--products 150] [--seed 7]
                                    [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.reports import month_of, today_in_brazil
from core.runs import create_run, get_run, start_run
from core.services import Services
from sandbox import AccountSpec, Churn, Sandbox
from tests.support.databases import fresh_postgres, migrated_sqlite
from tests.support.env import PG_ADMIN_URL
from tests.support.services import make_services, make_settings, new_company, step_until_done
from tests.support.truth import mismatches

TOKEN = "tok-drift"
#: A batch of changes before every CHURN_EVERY-th Tiny call while churn is on.
CHURN_EVERY = 10
#: Short names of the change kinds, for the table.
KINDS = {
    "pay_bill": "paid",
    "partly_pay_bill": "part-paid",
    "cancel_bill": "bill-cancel",
    "delete_bill": "bill-del",
    "cancel_order": "order-cancel",
    "delete_order": "order-del",
    "add_order": "order-new",
    "move_stock": "stock",
    "deactivate_product": "inactive",
    "delete_product": "product-del",
}


@dataclass
class Row:
    """One run of the sequence and what it left."""

    name: str
    status: str
    calls: int
    seconds: float
    changes: Counter[str]
    left: list[str]


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A migrated, empty database of `kind`, dropped afterwards."""
    if kind == "postgres":
        with fresh_postgres(PG_ADMIN_URL, prefix="tinysync_drift") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield migrated_sqlite(Path(tmp) / "drift.db")


def month_before(today: date) -> tuple[date, date]:
    """The first and last day of the month before `today`'s."""
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def run(services: Services, sandbox: Sandbox, company: str, name: str, **how: Any) -> Row:
    """Create, start and step one run to its end; what Tiny changed meanwhile."""
    before = sandbox.changes(TOKEN).counts
    started = time.perf_counter()
    with services.session_factory() as session:
        created = create_run(session, services.settings, company_id=company, **how)
        start_run(session, created.id)
    result = step_until_done(services, created.id, max_steps=5_000)
    seconds = time.perf_counter() - started
    with services.session_factory() as session:
        calls = get_run(session, created.id).tinyCalls
    after = sandbox.changes(TOKEN).counts
    return Row(name, result.status, calls, seconds, after - before, [])


def describe(changes: Counter[str]) -> str:
    """`12 (paid 3, order-new 2, …)`"""
    if not changes:
        return "0"
    parts = ", ".join(f"{KINDS.get(k, k)} {n}" for k, n in sorted(changes.items()))
    return f"{sum(changes.values())} ({parts})"


def by_record_kind(lines: list[str]) -> str:
    """`order 3, payable 1`"""
    kinds = Counter(line.split(" ", 1)[0] for line in lines)
    return ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "-"


def examples(lines: list[str], count: int) -> list[str]:
    """Up to `count` lines, taking each record kind in turn so every kind shows."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        groups.setdefault(line.split(" ", 1)[0], []).append(line)
    picked: list[str] = []
    while len(picked) < count and any(groups.values()):
        for group in groups.values():
            if group and len(picked) < count:
                picked.append(group.pop(0))
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=900, help="orders over 90 days")
    parser.add_argument("--bills", type=int, default=600, help="payables, and receivables")
    parser.add_argument("--products", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--show", type=int, default=8, help="mismatch lines shown per run")
    args = parser.parse_args()

    start, end = month_before(today_in_brazil())
    spec = AccountSpec(
        orders=args.orders,
        days=90,
        products=args.products,
        payables=args.bills,
        receivables=args.bills,
        seed=args.seed,
        rate_limit_calls=1_000_000,
        max_concurrent=1_000,
    )
    churn = Churn(
        every_calls=CHURN_EVERY,
        seed=args.seed,
        pay_bills=1,
        partly_pay_bills=1,
        cancel_bills=1,
        delete_bills=1,
        cancel_orders=1,
        delete_orders=1,
        new_orders=1,
        new_orders_window=(start, end),
        move_stock=2,
        deactivate_products=1,
    )
    sandbox = Sandbox()
    with database(args.db) as url:
        services = make_services(make_settings(url), sandbox)
        try:
            company = new_company(services, sandbox, TOKEN, spec)
            rows = []
            sandbox.set_churn(TOKEN, churn)
            rows.append(
                run(
                    services,
                    sandbox,
                    company,
                    "1 period, churn on",
                    mode="period",
                    month=month_of(start),
                )
            )
            rows[-1].left = mismatches(
                services.session_factory, sandbox, TOKEN, company, start, end
            )
            sandbox.set_churn(TOKEN, None)
            rows.append(run(services, sandbox, company, "2 incremental", mode="incremental"))
            rows[-1].left = mismatches(
                services.session_factory, sandbox, TOKEN, company, start, end
            )
            rows.append(
                run(services, sandbox, company, "3 period", mode="period", month=month_of(start))
            )
            rows[-1].left = mismatches(
                services.session_factory, sandbox, TOKEN, company, start, end
            )
        finally:
            services.close()

    print(
        f"drift: {args.db}, month {month_of(start)}, {args.orders} orders / {args.bills} bills "
        f"each / {args.products} products, churn every {CHURN_EVERY} calls in run 1, "
        f"seed {args.seed}"
    )
    header = ("run", "status", "calls", "s", "changes during the run", "mismatches after")
    table = [
        (
            r.name,
            r.status,
            str(r.calls),
            f"{r.seconds:.1f}",
            describe(r.changes),
            f"{len(r.left)} ({by_record_kind(r.left)})" if r.left else "0",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *table, strict=True)]
    for line in (header, tuple("-" * w for w in widths), *table):
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)) + " |")
    for r in rows:
        if r.left:
            print(f"\nafter {r.name}, for example:")
            for example in examples(r.left, args.show):
                print(f"  {example}")
    print(f"mismatches {len(rows[-1].left)}")


if __name__ == "__main__":
    main()
