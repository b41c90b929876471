"""A batch's look-ups read a customer's (author's) recent mentions, not the whole history

Revision ID: 0016
Revises: 0015

Ingest asks, per batch, for its customers' mentions since a moment (conversation owners),
their mentions answered since a moment (follow-ups) and its authors' mentions since a
moment (repeated texts). Through the single-column customer_id / author_id indexes each
look-up read every row of those histories and filtered on time afterwards, so a batch
grew slower as the database grew. With the time as the index's second column the
look-up is one index range per customer (author). Answered look-ups get a partial index:
new mentions come unanswered, so inserting them costs it nothing.

The composite indexes lead with the same column, so they serve every query the
single-column ones did; those are dropped (downgrade puts them back as 0001 made them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ANSWERED_SQL = "first_response_at IS NOT NULL"
REPLACED = {  # old single-column index: (new index, its columns)
    "ix_mentions_customer_id": ("ix_mentions_customer_created", ["customer_id", "created_at"]),
    "ix_mentions_author_id": ("ix_mentions_author_created", ["author_id", "created_at"]),
}
ANSWERED_INDEX = "ix_mentions_customer_answered"


def upgrade() -> None:
    for old, (new, columns) in REPLACED.items():
        op.create_index(new, "mentions", columns)
        op.drop_index(old, table_name="mentions")
    op.create_index(ANSWERED_INDEX, "mentions", ["customer_id", "first_response_at"],
                    sqlite_where=sa.text(ANSWERED_SQL),
                    postgresql_where=sa.text(ANSWERED_SQL))


def downgrade() -> None:
    op.drop_index(ANSWERED_INDEX, table_name="mentions")
    for old, (new, columns) in REPLACED.items():
        op.create_index(old, "mentions", columns[:1])
        op.drop_index(new, table_name="mentions")
