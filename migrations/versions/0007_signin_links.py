"""one-time sign-in links: `tinysync demo --serve` prints one that signs a browser in

`SignInLink` holds the SHA-256 of a link's random token (never the token), when it was made,
when it stops working, and when it was used: a link signs in once, within minutes.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "SignInLink",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("createdAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expiresAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("usedAt", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_SignInLink")),
    )


def downgrade() -> None:
    op.drop_table("SignInLink")
