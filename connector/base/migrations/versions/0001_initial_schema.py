"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "erp_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("updated_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempts_before_retry", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("processed_at", connector.base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "dedupe_key", name="uq_inbox_store_dedupe"),
    )
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_inbox_resource", ["store_id", "resource_id"], unique=False)

    op.create_table(
        "order_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("external_ref", sa.String(length=255), nullable=False),
        sa.Column("erp_ref", sa.String(length=255), nullable=False),
        sa.Column("source_updated_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "external_id", name="uq_link_store_order"),
    )
    op.create_table(
        "event_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["inbox_events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("event_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_attempts_event_id"), ["event_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("event_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_attempts_event_id"))

    op.drop_table("event_attempts")
    op.drop_table("order_links")
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_resource")
        batch_op.drop_index("ix_inbox_due")

    op.drop_table("inbox_events")
    op.drop_table("stores")
    op.drop_table("erp_connections")
