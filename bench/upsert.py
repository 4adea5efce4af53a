"""Upsert throughput: the project's bulk path vs a naive per-row ORM loop, in one process.

Both write the same sales records into PostgreSQL (or DATABASE_URL) and commit every 100
rows, as a sync does per page. Prints rows/s for each and, last, the ratio project/naive.

    .venv/bin/python bench/upsert.py [--rows 100000] [--baseline-rows 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text  # noqa: E402

from core.companies import add_company  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.models import SalesOrder  # noqa: E402
from core.modules.vw_vendas import _flag_if_changed, map_order  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.upsert import upsert  # noqa: E402

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
            upsert(session, SalesOrder, rows, extra_set=_flag_if_changed)
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

    name = None
    url = args.database_url
    if url is None:
        name = f"tinysync_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        settings = Settings(secret_key="bench")
        with factory() as session:
            a = add_company(session, settings, name="bench-project", token="tok-a").id
            b = add_company(session, settings, name="bench-naive", token="tok-b").id
            session.commit()
        recs = records(args.rows)
        base = records(args.baseline_rows)
        # Warm up both paths on a few rows so neither pays first-use costs in the figure.
        project_path(factory, a, records(PAGE, offset=50_000_000))
        naive_path(factory, b, records(PAGE, offset=50_000_000))
        t_project = project_path(factory, a, recs)
        t_naive = naive_path(factory, b, base)
        t_project_again = project_path(factory, a, recs)  # every row now an update
        project_rate = len(recs) / t_project
        naive_rate = len(base) / t_naive
        print(f"database: {engine.dialect.name}")
        print(f"project path (bulk upsert, insert): {project_rate:,.0f} rows/s ({len(recs)} rows)")
        print(f"project path (bulk upsert, update): {len(recs) / t_project_again:,.0f} rows/s")
        print(f"naive per-row ORM baseline:         {naive_rate:,.0f} rows/s ({len(base)} rows)")
        print(f"ratio {project_rate / naive_rate:.1f}")
    finally:
        engine.dispose()
        if name:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
