"""per-company pace: `Company.tinyCallsPerMinute` overrides the limit Tiny announces

Nullable: a company without it is paced to its account's `x-limit-api`, less
TINY_LIMIT_MARGIN (TINY_MIN_INTERVAL before the first answer).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("Company", sa.Column("tinyCallsPerMinute", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Not in a batch: on SQLite a batch would copy and drop "Company", which the foreign keys
    # of every synced table forbid; SQLite >= 3.35 drops a column in place.
    op.drop_column("Company", "tinyCallsPerMinute")
