"""offline_refunds: credit notes the ERP made itself, refunded in the stores once each

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "offline_refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("refund_ref", sa.String(length=128), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("remote_id", sa.String(length=128), nullable=True),
        sa.Column("refund", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "refund_ref", name="uq_offline_refund"),
    )
    with op.batch_alter_table("offline_refunds", schema=None) as batch_op:
        batch_op.create_index("ix_offline_refunds_status", ["status"], unique=False)
        batch_op.create_index("ix_offline_refunds_order", ["store_id", "order_external_id"], unique=False)


def downgrade() -> None:
    op.drop_table("offline_refunds")
