"""SLA tallies kept per INSERT statement, not per inserted row (PostgreSQL)

Revision ID: 0015
Revises: 0014

Ingest inserts mentions a batch at a time in one statement. 0012's row-level AFTER INSERT
trigger ran a plpgsql upsert on the same few hot `sla_tallies` rows once per mention; a
statement-level trigger reading the statement's transition table adds the whole batch,
grouped by (channel, outcome), in one upsert. Rows upserted in key order, so two
concurrent batches lock the tally rows in the same order.

UPDATE and DELETE keep 0012's row-level triggers (they touch one mention at a time).
SQLite keeps its row-level triggers: it has no statement-level triggers. (There, having
any insert trigger at all, not the upsert, is what costs: measured on 2,000-row batches.)
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

STATEMENT_FUNCTION = """CREATE FUNCTION mentions_sla_tally_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO sla_tallies (channel, outcome, count)
  SELECT channel, outcome, count(*) FROM (
    SELECT channel, mention_sla_outcome(status, deadline_at, first_response_at) AS outcome
    FROM inserted_mentions) AS settled
  WHERE outcome IS NOT NULL
  GROUP BY channel, outcome
  ORDER BY channel, outcome
  ON CONFLICT (channel, outcome) DO UPDATE SET count = sla_tallies.count + EXCLUDED.count;
  RETURN NULL;
END $$"""
STATEMENT_TRIGGER = """CREATE TRIGGER mentions_sla_tally_insert AFTER INSERT ON mentions
REFERENCING NEW TABLE AS inserted_mentions FOR EACH STATEMENT
EXECUTE FUNCTION mentions_sla_tally_inserted()"""
ROW_TRIGGER = """CREATE TRIGGER mentions_sla_tally_insert AFTER INSERT ON mentions FOR EACH ROW
WHEN (mention_sla_outcome(NEW.status, NEW.deadline_at, NEW.first_response_at) IS NOT NULL)
EXECUTE FUNCTION mentions_sla_tally()"""  # 0012's, as it shipped


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER mentions_sla_tally_insert ON mentions")
    op.execute(STATEMENT_FUNCTION)
    op.execute(STATEMENT_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER mentions_sla_tally_insert ON mentions")
    op.execute("DROP FUNCTION mentions_sla_tally_inserted()")
    op.execute(ROW_TRIGGER)
