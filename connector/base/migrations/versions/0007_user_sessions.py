"""server-side sessions: signing out (or a password change) ends a session for good

Sessions were only signed cookies, valid until they expired: a copied cookie outlived its sign-out.
Each now names a row of user_sessions, deleted on sign-out and on a password change. Cookies made
before this revision name none: their users sign in once more.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.base.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", connector.base.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_sessions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("user_sessions")
