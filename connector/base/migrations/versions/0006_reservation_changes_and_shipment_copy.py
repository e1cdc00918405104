"""reservations remember when they changed; fulfillments keep the shipment they tell

The inventory sync recomputes only the SKUs whose inputs changed since a store's last sync: stock
rows have `changed_at`, and reservations need one too (an order placed, edited or cancelled changes
what every store sharing the SKU may sell). A fulfillment that failed is retried on a later run,
after the ERP cursor has moved past its shipment, so the row keeps a copy of the shipment.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        # NULL for rows made before this revision: they count as "changed long ago".
        batch_op.add_column(sa.Column("changed_at", connector.base.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_reservations_changed_at"), ["changed_at"], unique=False)
    with op.batch_alter_table("fulfillments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shipment", sa.JSON(), nullable=True))
        batch_op.create_index("ix_fulfillments_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fulfillments", schema=None) as batch_op:
        batch_op.drop_index("ix_fulfillments_status")
        batch_op.drop_column("shipment")
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservations_changed_at"))
        batch_op.drop_column("changed_at")
