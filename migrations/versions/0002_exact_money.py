"""exact money: integer cents on SQLite; no NaN left in PostgreSQL's numeric columns

SQLite's NUMERIC is a float (99999999999999.99 came back .98): its money columns become
BIGINT cents (core.models.Money), existing amounts converted through their shortest decimal
text, so what was written as 0.285 stays 0.28 (half-even) rather than what the float holds.
An amount that is not a finite number within NUMERIC(16,2) becomes NULL.
PostgreSQL keeps NUMERIC(16,2); a NaN that got stored (numeric accepts it, and it made the
reports fail) becomes NULL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MONEY_COLUMNS = {
    "SalesOrder": ("valor", "totalProdutos", "totalPedido", "valorDesconto", "valorFrete"),
    "SalesOrderItem": ("valorUnitario",),
    "Payable": ("valor", "saldo"),
    "Receivable": ("valor", "saldo"),
    "StockItem": ("preco",),
}
QUANTITY_COLUMNS = {
    "SalesOrderItem": ("quantidade",),
    "StockItem": ("saldo", "saldoReservado"),
}
LIMIT_CENTS = 10**16


def _cents(value: object) -> int | None:
    if value is None or isinstance(value, bytes):
        return None
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount.adjusted() >= 14:
        return None
    cents = int(amount.scaleb(2).to_integral_value(ROUND_HALF_EVEN))
    return cents if abs(cents) < LIMIT_CENTS else None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for table, columns in MONEY_COLUMNS.items():  # every quantity table has money too
            _null_nan(table, columns + QUANTITY_COLUMNS.get(table, ()))
        return
    for table, columns in MONEY_COLUMNS.items():
        quoted = ", ".join(f'"{c}"' for c in columns)
        rows = bind.execute(sa.text(f'SELECT id, {quoted} FROM "{table}"')).all()
        assignments = ", ".join(f'"{c}" = :{c}' for c in columns)
        update = sa.text(f'UPDATE "{table}" SET {assignments} WHERE id = :id')
        for row in rows:
            values = {c: _cents(v) for c, v in zip(columns, row[1:], strict=True)}
            bind.execute(update, {"id": row[0], **values})
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Numeric(16, 2), type_=sa.BigInteger())


def _null_nan(table: str, columns: tuple[str, ...]) -> None:
    for column in columns:
        op.execute(f'UPDATE "{table}" SET "{column}" = NULL WHERE "{column}" = \'NaN\'')


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # NaN is not put back
    for table, columns in MONEY_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Numeric(16, 2))
        assignments = ", ".join(f'"{c}" = "{c}" / 100.0' for c in columns)
        op.execute(f'UPDATE "{table}" SET {assignments}')
