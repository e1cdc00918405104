"""Inbox bodies stored uncompressed on PostgreSQL

Compressing every 15 kB webhook body (pglz) was the largest share of the database's CPU per
delivery; the receiver's throughput matters more than the disk it saves, and old succeeded events
are pruned. SQLite has no such setting.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE inbox_events ALTER COLUMN body SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE inbox_events ALTER COLUMN body SET STORAGE EXTENDED")
