"""Brands: whose brand each mention is about (ours or a competitor's), whether it counts
in share of voice, and spikes per competitor

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mentions") as batch:
        batch.add_column(sa.Column("brand", sa.String(length=50), nullable=False,
                                   server_default="ours"))
        batch.add_column(sa.Column("counted", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
    # Before this, every mention was about our brand; the brand's own posts and noise were
    # stored ignored, and they are not someone's voice.
    mentions = sa.table("mentions", sa.column("status", sa.String), sa.column("counted"))
    op.execute(mentions.update().where(mentions.c.status == "ignored")
               .values(counted=sa.false()))
    with op.batch_alter_table("spike_states") as batch:
        batch.add_column(sa.Column("brand", sa.String(length=50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spike_states") as batch:
        batch.drop_column("brand")
    with op.batch_alter_table("mentions") as batch:
        batch.drop_column("counted")
        batch.drop_column("brand")
