"""Reply templates edited by admins, stored as overrides of the tone template files

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tone_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("intent", sa.String(length=50), nullable=False),
        sa.Column("lang", sa.String(length=5), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tone_templates")),
        sa.UniqueConstraint("channel", "intent", "lang", name="uq_tone_templates_channel"),
    )


def downgrade() -> None:
    op.drop_table("tone_templates")
