"""Upsert throughput: the project's bulk path vs a naive per-row ORM loop, in one process.

Both write the same sales records into PostgreSQL (or DATABASE_URL) and commit every 100
rows, as a sync does per page. Prints rows/s for each and, last, the ratio project/naive.

    .venv/bin/python -m bench.upsert [--rows 100000] [--baseline-rows 20000]
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import AbstractContextManager, nullcontext

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.companies import add_company
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from core.models import SalesOrder
from core.modules.orders import flag_if_changed, map_order
from core.settings import Settings
from core.upsert import upsert
from tests.support.databases import fresh_postgres

PAGE = 100
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def records(n: int, offset: int = 0) -> list[dict]:
    """Tiny-shaped order listing records (strings where Tiny sends strings)."""
    return [
        {
            "id": 10_000_000 + offset + i,
            "numero": str(offset + i),
            "numero_ecommerce": "",
            "data_pedido": f"{1 + i % 28:02d}/{1 + i % 12:02d}/2025",
            "data_prevista": "",
            "nome": f"Cliente {i % 997}",
            "valor": f"{(i * 37) % 10000}.{i % 100:02d}",
            "id_vendedor": 7,
            "nome_vendedor": "Vendedor",
            "situacao": "Aberto" if i % 3 else "Faturado",
            "codigo_rastreamento": "",
        }
        for i in range(n)
    ]


def project_path(factory, company_id: str, recs: list[dict]) -> float:
    start = time.perf_counter()
    for i in range(0, len(recs), PAGE):
        rows = [map_order(company_id, r) for r in recs[i : i + PAGE]]
        with factory() as session:
            upsert(session, SalesOrder, rows, extra_set=flag_if_changed)
            session.commit()
    return time.perf_counter() - start


def naive_path(factory, company_id: str, recs: list[dict]) -> float:
    start = time.perf_counter()
    for i in range(0, len(recs), PAGE):
        with factory() as session:
            for record in recs[i : i + PAGE]:
                row = map_order(company_id, record)
                existing = session.scalars(
                    select(SalesOrder).where(
                        SalesOrder.companyId == company_id, SalesOrder.tinyId == row["tinyId"]
                    )
                ).first()
                if existing is None:
                    session.add(SalesOrder(**row))
                else:
                    for key, value in row.items():
                        setattr(existing, key, value)
                session.flush()
            session.commit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    # The naive loop runs ~500 rows/s: 20,000 rows give a stable rate in under a minute.
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh PostgreSQL DB")
    args = parser.parse_args()

    if args.database_url:
        database: AbstractContextManager[str] = nullcontext(args.database_url)
    else:
        database = fresh_postgres(PG_ADMIN, prefix="tinysync_bench")
    with database as url:
        engine = make_engine(url)
        upgrade(engine)  # a --database-url may not be migrated yet
        try:
            print(f"database: {engine.dialect.name}")
            measure(make_session_factory(engine), args.rows, args.baseline_rows)
        finally:
            engine.dispose()


def measure(factory: sessionmaker[Session], rows: int, baseline_rows: int) -> None:
    """Time both paths and print their rates; the ratio last."""
    settings = Settings(secret_key="bench")
    with factory() as session:
        a = add_company(session, settings, name="bench-project", token="tok-a").id
        b = add_company(session, settings, name="bench-naive", token="tok-b").id
        session.commit()
    recs = records(rows)
    base = records(baseline_rows)
    # Warm up both paths on a few rows so neither pays first-use costs in the figure.
    project_path(factory, a, records(PAGE, offset=50_000_000))
    naive_path(factory, b, records(PAGE, offset=50_000_000))
    t_project = project_path(factory, a, recs)
    t_naive = naive_path(factory, b, base)
    t_project_again = project_path(factory, a, recs)  # every row now an update
    project_rate = len(recs) / t_project
    naive_rate = len(base) / t_naive
    print(f"project path (bulk upsert, insert): {project_rate:,.0f} rows/s ({len(recs)} rows)")
    print(f"project path (bulk upsert, update): {len(recs) / t_project_again:,.0f} rows/s")
    print(f"naive per-row ORM baseline:         {naive_rate:,.0f} rows/s ({len(base)} rows)")
    print(f"ratio {project_rate / naive_rate:.1f}")


if __name__ == "__main__":
    main()
