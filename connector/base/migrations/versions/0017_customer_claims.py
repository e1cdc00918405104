"""customer_links.claimed_by: a claim on a buyer's keys lasts while its event's lease does

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_links", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
