"""Source leases: which `listener serve` replica polls each source, and which replicas
are alive to share them

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_leases",
        sa.Column("source_id", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_source_leases")),
    )
    op.create_table(
        "live_replicas",
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("alive_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("holder", name=op.f("pk_live_replicas")),
    )


def downgrade() -> None:
    op.drop_table("live_replicas")
    op.drop_table("source_leases")
