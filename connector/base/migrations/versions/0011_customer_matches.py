"""customer_matches: orders waiting for a person to say whether their buyer is a customer the ERP has

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_matches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column("customer_key", sa.String(length=255), nullable=False),
        sa.Column("buyer", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("erp_customer_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "order_external_id", name="uq_customer_match"),
    )
    op.create_index("ix_customer_matches_key", "customer_matches", ["customer_key", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_customer_matches_key", table_name="customer_matches")
    op.drop_table("customer_matches")
