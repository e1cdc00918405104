"""routing: which ERP warehouse ships each store order (and each line of a split one), kept from its first write

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_routings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("warehouse", sa.String(length=64), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "order_external_id", name="uq_order_routing"),
    )


def downgrade() -> None:
    op.drop_table("order_routings")
