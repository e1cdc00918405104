"""undelivered: parcels the ERP recorded as returned undelivered, their store orders cancelled once each

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "undelivered",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("return_ref", sa.String(length=128), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("parcel", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "return_ref", name="uq_undelivered"),
    )
    with op.batch_alter_table("undelivered", schema=None) as batch_op:
        batch_op.create_index("ix_undelivered_status", ["status"], unique=False)
        batch_op.create_index("ix_undelivered_order", ["store_id", "order_external_id"], unique=False)


def downgrade() -> None:
    op.drop_table("undelivered")
