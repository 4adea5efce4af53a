"""Tiny API v3 beside v2: a company chooses its API, and a v3 one keeps its OAuth app and pair

`Company.apiVersion` is `v2` (every existing company) or `v3`. A v3 company stores its OAuth
app's client id and its secret (encrypted like the v2 token), the access and refresh tokens
(encrypted) with when each lapses and when they were last refreshed, and `needsReconnect`
with its reason when the refresh token stopped working (only a person can authorise again).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("v3ClientId", sa.String(200)),
    ("v3ClientSecretEncrypted", sa.Text()),
    ("v3AccessTokenEncrypted", sa.Text()),
    ("v3AccessExpiresAt", sa.DateTime(timezone=True)),
    ("v3RefreshTokenEncrypted", sa.Text()),
    ("v3RefreshExpiresAt", sa.DateTime(timezone=True)),
    ("v3TokenRefreshedAt", sa.DateTime(timezone=True)),
    ("needsReconnectReason", sa.String(500)),
)


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite has ADD and DROP COLUMN): a batch rebuild of "Company" would
    # drop the table its runs and rows point to, which SQLite's foreign keys refuse.
    op.add_column(
        "Company", sa.Column("apiVersion", sa.String(2), nullable=False, server_default="v2")
    )
    for name, type_ in _COLUMNS:
        op.add_column("Company", sa.Column(name, type_, nullable=True))
    op.add_column(
        "Company",
        sa.Column("needsReconnect", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("Company", "needsReconnect")
    for name, _type in reversed(_COLUMNS):
        op.drop_column("Company", name)
    op.drop_column("Company", "apiVersion")
