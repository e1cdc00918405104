"""lifecycle bindings

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "customer_links",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("erp_customer_id", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "erp_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("erp_ref", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "kind", "key", name="uq_erp_document"),
    )
    with op.batch_alter_table("erp_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_erp_documents_order_external_id"), ["order_external_id"], unique=False)

    with op.batch_alter_table("order_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("currency", sa.String(length=3), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("order_links", schema=None) as batch_op:
        batch_op.drop_column("currency")

    with op.batch_alter_table("erp_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erp_documents_order_external_id"))

    op.drop_table("erp_documents")
    op.drop_table("customer_links")
