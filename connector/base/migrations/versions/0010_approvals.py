"""approvals: orders held by a store's approval rules, and the decision taken on each

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column("customer", sa.String(length=255), nullable=False),
        sa.Column("total", sa.String(length=48), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("store_cancel", sa.String(length=16), nullable=True),
        sa.Column("store_cancel_error", sa.Text(), nullable=True),
        sa.Column("store_cancel_tries", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "order_external_id", name="uq_approval"),
    )
    op.create_index("ix_approvals_status", "approvals", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_approvals_status", table_name="approvals")
    op.drop_table("approvals")
