"""soft delete and "last listed": deletedAt and listedAt on orders, bills and products

`deletedAt` is set only after Tiny confirms a record is gone (code 32 on its `obter` service,
or a product listed with situacao E): the row stays, marked, and reports leave it out.
`listedAt` is when a listing last served the record: rows of a complete listing's scope whose
`listedAt` is older than that listing's start were not served, and are re-read to confirm.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("SalesOrder", "Payable", "Receivable", "StockItem")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("deletedAt", sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column("listedAt", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("listedAt")
            batch.drop_column("deletedAt")
