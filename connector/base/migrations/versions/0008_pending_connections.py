"""pending store connections: the one-time ids of Shopify's OAuth and WooCommerce's key approval

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_connections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("store_slug", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pending_connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_connections_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("pending_connections")
