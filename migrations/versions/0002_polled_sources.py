"""polled sources: conversation threads, platform replies, poll outcomes

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("response_external_id", sa.String(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column("response_url", sa.Text(), nullable=True))
        batch_op.create_index("ix_mentions_source_thread", ["source", "thread"], unique=False)
    with op.batch_alter_table("source_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_outcome", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("last_items", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_states", schema=None) as batch_op:
        batch_op.drop_column("last_items")
        batch_op.drop_column("last_outcome")
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.drop_index("ix_mentions_source_thread")
        batch_op.drop_column("response_url")
        batch_op.drop_column("response_external_id")
        batch_op.drop_column("thread")
