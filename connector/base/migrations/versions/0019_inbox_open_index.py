"""ix_inbox_open: a store's open events (pending or processing) in id order, for the drain's claim

The claim takes a store's oldest due events. With only the primary key to go by, PostgreSQL walked the
inbox from its oldest event and stepped over every event already done: the claim cost grew with the
inbox (5 ms at 20,000 events, the freshness run falling behind from its third minute). This partial index
holds the open events only, so a claim reads a few entries however many events are kept. On a large inbox
the index is built in one pass over the table, during which new webhooks wait (seconds per million rows).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'processing')")


def upgrade() -> None:
    op.create_index("ix_inbox_open", "inbox_events", ["store_id", "id"], postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    op.drop_index("ix_inbox_open", table_name="inbox_events")
