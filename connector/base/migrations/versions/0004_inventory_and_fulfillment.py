"""inventory and fulfillment

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "stock_levels",
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("warehouse", sa.String(length=64), nullable=False),
        sa.Column("on_hand", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("erp_updated_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", "warehouse"),
    )
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_levels_changed_at"), ["changed_at"], unique=False)

    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "fulfillments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("shipment_ref", sa.String(length=128), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "shipment_ref", name="uq_fulfillment"),
    )
    with op.batch_alter_table("fulfillments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fulfillments_order_external_id"), ["order_external_id"], unique=False)

    op.create_table(
        "pushed_levels",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("pushed", sa.Integer(), nullable=True),
        sa.Column("reported", sa.Integer(), nullable=True),
        sa.Column("pushed_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", "sku", "location"),
    )
    op.create_table(
        "reservations",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("placed_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", "order_external_id", "sku"),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reservations_sku"), ["sku"], unique=False)

    op.create_table(
        "store_variants",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("variant_id", sa.String(length=64), nullable=True),
        sa.Column("manage_stock", sa.Boolean(), nullable=False),
        sa.Column("resolved_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", "sku"),
    )


def downgrade() -> None:

    op.drop_table("store_variants")
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservations_sku"))

    op.drop_table("reservations")
    op.drop_table("pushed_levels")
    with op.batch_alter_table("fulfillments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fulfillments_order_external_id"))

    op.drop_table("fulfillments")
    op.drop_table("sync_cursors")
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_levels_changed_at"))

    op.drop_table("stock_levels")
