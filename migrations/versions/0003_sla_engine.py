"""SLA engine: alert moments per mention, follow-up clocks, outbox delivery state

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("alerts_fired", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("next_alert_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("follow_up_of", sa.Integer(), nullable=True))
        batch_op.create_index("ix_mentions_next_alert_at", ["next_alert_at"], unique=False)
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=20), nullable=False, server_default="pending")
        )
        batch_op.add_column(sa.Column("delivered_in", sa.Integer(), nullable=True))
    # Open mentions with a deadline get their first moment armed by the engine's sweep.
    op.execute("UPDATE mentions SET next_alert_at = COALESCE(at_risk_at, deadline_at) "
               "WHERE deadline_at IS NOT NULL AND first_response_at IS NULL "
               "AND status IN ('new', 'assigned')")


def downgrade() -> None:
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.drop_column("delivered_in")
        batch_op.drop_column("state")
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.drop_index("ix_mentions_next_alert_at")
        batch_op.drop_column("follow_up_of")
        batch_op.drop_column("next_alert_at")
        batch_op.drop_column("alerts_fired")
