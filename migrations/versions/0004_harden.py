"""production hardening: server-side UI sessions, and an index for pruning old run logs

`UiSession` holds one row per signed-in browser: the SHA-256 of the random id its (signed)
cookie carries, when it began, when it was last seen and when it was revoked. Sign-out and a
new sign-in revoke a row, so a copied cookie stops working at once; idle and absolute
timeouts are read from it. `ix_SyncRunLog_timestamp` serves the retention's delete by age.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "UiSession",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("createdAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lastSeenAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revokedAt", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_UiSession")),
    )
    with op.batch_alter_table("SyncRunLog") as batch:
        batch.create_index("ix_SyncRunLog_timestamp", ["timestamp"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("SyncRunLog") as batch:
        batch.drop_index("ix_SyncRunLog_timestamp")
    op.drop_table("UiSession")
