"""The queue's text search: each mention's text, author handle and name stored folded

Revision ID: 0014
Revises: 0013

`mentions.search_text` holds them case- and Turkish-folded ("İADE" → "iade"), so the
queue's search is a plain substring test. The open mentions already stored (the only ones
the queue searches) are filled here, in id order and in batches, with the same folding
ingest writes (copied, so this migration keeps meaning what it meant when it shipped).
Settled history is left NULL: rewriting every row would take minutes on a million and,
on PostgreSQL, leave the table twice its size until vacuumed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 5_000
OPEN_SQL = "status IN ('new', 'assigned')"
LETTER_GROUPS = ("aAâÂ", "cCçÇ", "gGğĞ", "iIıİîÎ", "oOöÖ", "sSşŞ", "uUüÜûÛ")
FOLDED = str.maketrans({char: group[0] for group in LETTER_GROUPS for char in group[1:]})


def folded(*parts: str | None) -> str:
    return "\n".join((part or "").translate(FOLDED).lower() for part in parts)


def upgrade() -> None:
    op.add_column("mentions", sa.Column("search_text", sa.Text(), nullable=True))
    connection = op.get_bind()
    after = 0
    while batch := fill_batch(connection, after):
        after = batch
    if connection.dialect.name == "postgresql":
        op.execute("ANALYZE mentions")  # else its plans guess at the new column until autovacuum


def fill_batch(connection: Any, after: int) -> int | None:
    """Fill the next open mentions after id `after`; the last id filled, or None."""
    rows = connection.execute(sa.text(
        "SELECT m.id, m.text, a.handle, a.name FROM mentions m "
        "LEFT JOIN authors a ON a.id = m.author_id "
        f"WHERE m.{OPEN_SQL} AND m.id > :after ORDER BY m.id LIMIT :batch"),
        {"after": after, "batch": BATCH}
    ).all()
    if not rows:
        return None
    ids, texts = [row[0] for row in rows], [folded(*row[1:]) for row in rows]
    if connection.dialect.name == "postgresql":  # one statement a batch, not one a row
        connection.execute(sa.text(
            "UPDATE mentions SET search_text = filled.text "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:texts AS text[])) AS filled (id, text) "
            "WHERE mentions.id = filled.id"), {"ids": ids, "texts": texts})
    else:
        connection.execute(sa.text("UPDATE mentions SET search_text = :text WHERE id = :id"),
                           [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)])
    return int(ids[-1])


def downgrade() -> None:
    # Not in batch mode: rebuilding `mentions` on SQLite would trip over the rows and
    # triggers that refer to it, and SQLite (3.35+) drops a plain column in place.
    op.execute("ALTER TABLE mentions DROP COLUMN search_text")
