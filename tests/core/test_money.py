"""Money is exact on SQLite and PostgreSQL: stored, read, summed, and migrated from floats."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select, text

from core.db import make_engine, make_session_factory
from core.migrate import downgrade, upgrade
from core.models import Company, Receivable, SalesOrder
from core.reports import open_bills_report, sales_report
from core.upsert import upsert

DAY = date(2024, 11, 5)
TODAY = date(2024, 12, 20)
LARGEST = Decimal("99999999999999.99")


def _company(session) -> str:
    company = Company(name="Money", tinyTokenEncrypted="x", tinyAccountKey="k")
    session.add(company)
    session.commit()
    return company.id


def test_the_largest_amount_round_trips_exactly(db_url):
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        company = _company(session)
        session.add_all(
            [
                SalesOrder(companyId=company, tinyId=1, dataPedido=DAY, valor=LARGEST),
                SalesOrder(companyId=company, tinyId=2, dataPedido=DAY, valor=-LARGEST),
                SalesOrder(companyId=company, tinyId=3, dataPedido=DAY, valor=Decimal("0.01")),
            ]
        )
        session.commit()
        session.expire_all()
        values = session.scalars(select(SalesOrder.valor).order_by(SalesOrder.tinyId)).all()
        assert values == [LARGEST, -LARGEST, Decimal("0.01")]
        assert str(values[0]) == "99999999999999.99"
        big = session.scalars(
            select(SalesOrder.tinyId).where(SalesOrder.valor > Decimal("1"))
        ).all()
        assert big == [1]  # comparisons with literals see amounts, not cents
    engine.dispose()


def test_sums_are_exact_even_past_what_a_float_or_a_64_bit_integer_holds(db_url):
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        company = _company(session)
        rows = [
            {"companyId": company, "tinyId": n, "dataPedido": DAY, "valor": LARGEST}
            for n in range(1, 1001)
        ]
        rows.append(
            {"companyId": company, "tinyId": 1001, "dataPedido": DAY, "valor": Decimal("0.01")}
        )
        upsert(session, SalesOrder, rows)
        session.add(
            Receivable(
                companyId=company,
                tinyId=1,
                dataVencimento=DAY,
                valor=Decimal("0.10"),
                saldo=Decimal("0.20"),
                situacao="aberto",
            )
        )
        session.commit()
        report = sales_report(session, company, "2024-11", today=TODAY)
        # 10**17 reais is 10**19 cents: past SQLite's 64-bit integers and a float's 16 digits.
        assert report.total == LARGEST * 1000 + Decimal("0.01")
        assert str(report.total) == "99999999999999990.01"
        bills = open_bills_report(session, company, "receivables", today=TODAY)
        assert bills.amount == Decimal("0.20")
    engine.dispose()


def test_the_migration_moves_sqlite_floats_to_exact_cents(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO "Company" (id, name, active, "tinyTokenEncrypted", "tinyAccountKey",'
                " \"createdAt\") VALUES ('c', 'Old', 1, 'x', 'k', '2024-01-01 00:00:00')"
            )
        )
        for tiny_id, valor in enumerate([0.285, 1234.5, 12, 1e300, "abc", None, -7.1], start=1):
            conn.execute(
                text(
                    'INSERT INTO "SalesOrder" ("companyId", "tinyId", valor, "needsEnrichment",'
                    " \"syncedAt\") VALUES ('c', :id, :valor, 0, '2024-01-01 00:00:00')"
                ),
                {"id": tiny_id, "valor": valor},
            )
    upgrade(engine)
    with engine.connect() as conn:
        cents = conn.execute(text('SELECT valor FROM "SalesOrder" ORDER BY "tinyId"')).scalars()
        assert list(cents) == [28, 123450, 1200, None, None, None, -710]
    with make_session_factory(engine)() as session:
        values = session.scalars(select(SalesOrder.valor).order_by(SalesOrder.tinyId)).all()
    assert values[:3] == [Decimal("0.28"), Decimal("1234.50"), Decimal("12.00")]
    downgrade(engine, "0001")
    with engine.connect() as conn:
        back = conn.execute(text('SELECT valor FROM "SalesOrder" ORDER BY "tinyId"')).scalars()
        assert list(back)[:3] == [0.28, 1234.5, 12.0]
    engine.dispose()


def test_the_migration_clears_nan_that_postgresql_accepted(pg_database):
    engine = make_engine(pg_database)
    downgrade(engine, "0001")
    company = "c0000000-0000-4000-8000-000000000001"
    try:
        with make_session_factory(engine)() as session:
            # Raw SQL: the model's Company has the columns of the latest schema, not 0001's.
            session.execute(
                text(
                    'INSERT INTO "Company" (id, name, active, "tinyTokenEncrypted",'
                    ' "tinyAccountKey", "createdAt")'
                    " VALUES (:c, 'Money', true, 'x', 'k', now())"
                ),
                {"c": company},
            )
            session.execute(
                text(
                    'INSERT INTO "SalesOrder" ("companyId", "tinyId", valor, "needsEnrichment",'
                    " \"syncedAt\") VALUES (:c, 1, 'NaN', false, now()), (:c, 2, 5.5, false, now())"
                ),
                {"c": company},
            )
            session.commit()
    finally:
        upgrade(engine)
    with engine.connect() as conn:
        values = conn.execute(
            text('SELECT valor FROM "SalesOrder" WHERE "companyId" = :c ORDER BY "tinyId"'),
            {"c": company},
        ).scalars()
        assert list(values) == [None, Decimal("5.50")]
    engine.dispose()
