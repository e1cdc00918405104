"""attribution: who has the credit for each web order in the ERP (channel web, the account's owner, a split)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_attributions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column("erp_customer_id", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("rule", sa.String(length=8), nullable=False),
        sa.Column("owner_share", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("owner_credit", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("placed_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source_updated_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "order_external_id", name="uq_order_attribution"),
    )
    op.create_index("ix_order_attributions_placed_at", "order_attributions", ["placed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_order_attributions_placed_at", table_name="order_attributions")
    op.drop_table("order_attributions")
