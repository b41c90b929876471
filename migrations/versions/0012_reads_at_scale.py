"""Reads at scale: 64-bit mention ids, indexes shaped like the queries, SLA tallies

Revision ID: 0012
Revises: 0011

- PostgreSQL: mention, event and outbox ids (and every column pointing at a mention)
  become BIGINT, their sequences too. SQLite needs nothing: an INTEGER PRIMARY KEY is its
  64-bit rowid and INTEGER columns hold 64-bit values, so the tables are left as they are
  (rebuilding them in batch mode would only cost time on a big file).
- The API's newest-first pages get (filter column, id) indexes; open mentions get one
  partial covering index; customers' segments an index (the queue's filter form).
- `sla_tallies` counts settled mentions per channel and outcome, filled from the rows
  already stored and kept current by triggers on `mentions`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPEN_SQL = "status IN ('new', 'assigned')"
BIG_IDS = {  # table: columns holding a mention, event or outbox id
    "mentions": ("id", "follow_up_of"),
    "mention_events": ("id", "mention_id"),
    "alert_outbox": ("id", "mention_id"),
    "customer_contacts": ("mention_id",),
}
SEQUENCES = ("mentions", "mention_events", "alert_outbox")
PAGE_INDEXES = {"status": None, "channel": "ix_mentions_channel",
                "source": "ix_mentions_source", "assignee": "ix_mentions_assignee"}
OPEN_COLUMNS = ["status", "channel", "deadline_at", "at_risk_at", "first_response_at",
                "assignee", "lang", "source", "priority", "created_at", "id"]


def outcome(row: str) -> str:
    """What a mention row adds to the tallies (NULL: nothing); the triggers and the
    initial fill use the same expression."""
    return (f"CASE WHEN {row}deadline_at IS NULL OR {row}{OPEN_SQL} THEN NULL "
            f"WHEN {row}first_response_at IS NULL THEN 'unanswered' "
            f"WHEN {row}first_response_at <= {row}deadline_at THEN 'met' ELSE 'missed' END")


SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER mentions_sla_tally_insert AFTER INSERT ON mentions
    WHEN ({outcome('NEW.')}) IS NOT NULL BEGIN
      INSERT INTO sla_tallies (channel, outcome, count)
      SELECT NEW.channel, {outcome('NEW.')}, 1 WHERE true
      ON CONFLICT (channel, outcome) DO UPDATE SET count = count + 1;
    END""",
    f"""CREATE TRIGGER mentions_sla_tally_update
    AFTER UPDATE OF status, deadline_at, first_response_at, channel ON mentions
    WHEN ({outcome('OLD.')}) IS NOT ({outcome('NEW.')}) OR OLD.channel IS NOT NEW.channel
    BEGIN
      UPDATE sla_tallies SET count = count - 1
      WHERE channel = OLD.channel AND outcome = ({outcome('OLD.')});
      INSERT INTO sla_tallies (channel, outcome, count)
      SELECT NEW.channel, {outcome('NEW.')}, 1 WHERE ({outcome('NEW.')}) IS NOT NULL
      ON CONFLICT (channel, outcome) DO UPDATE SET count = count + 1;
    END""",
    f"""CREATE TRIGGER mentions_sla_tally_delete AFTER DELETE ON mentions
    WHEN ({outcome('OLD.')}) IS NOT NULL BEGIN
      UPDATE sla_tallies SET count = count - 1
      WHERE channel = OLD.channel AND outcome = ({outcome('OLD.')});
    END""",
)
SQLITE_TRIGGER_NAMES = ("mentions_sla_tally_insert", "mentions_sla_tally_update",
                        "mentions_sla_tally_delete")

POSTGRESQL_TRIGGERS = (
    """CREATE FUNCTION mention_sla_outcome(status text, deadline_at timestamptz,
                                          first_response_at timestamptz)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT """
    + outcome("").replace("status IN", "$1 IN").replace("deadline_at", "$2")
    .replace("first_response_at", "$3") + " $$",
    """CREATE FUNCTION mentions_sla_tally() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      before text;
      after text;
    BEGIN
      IF TG_OP <> 'INSERT' THEN
        before := mention_sla_outcome(OLD.status, OLD.deadline_at, OLD.first_response_at);
        IF before IS NOT NULL THEN
          UPDATE sla_tallies SET count = count - 1
          WHERE channel = OLD.channel AND outcome = before;
        END IF;
      END IF;
      IF TG_OP <> 'DELETE' THEN
        after := mention_sla_outcome(NEW.status, NEW.deadline_at, NEW.first_response_at);
        IF after IS NOT NULL THEN
          INSERT INTO sla_tallies (channel, outcome, count) VALUES (NEW.channel, after, 1)
          ON CONFLICT (channel, outcome) DO UPDATE SET count = sla_tallies.count + 1;
        END IF;
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER mentions_sla_tally_insert AFTER INSERT ON mentions FOR EACH ROW
    WHEN (mention_sla_outcome(NEW.status, NEW.deadline_at, NEW.first_response_at)
          IS NOT NULL)
    EXECUTE FUNCTION mentions_sla_tally()""",
    """CREATE TRIGGER mentions_sla_tally_update
    AFTER UPDATE OF status, deadline_at, first_response_at, channel ON mentions FOR EACH ROW
    WHEN (mention_sla_outcome(OLD.status, OLD.deadline_at, OLD.first_response_at)
          IS DISTINCT FROM mention_sla_outcome(NEW.status, NEW.deadline_at,
                                               NEW.first_response_at)
          OR OLD.channel IS DISTINCT FROM NEW.channel)
    EXECUTE FUNCTION mentions_sla_tally()""",
    """CREATE TRIGGER mentions_sla_tally_delete AFTER DELETE ON mentions FOR EACH ROW
    WHEN (mention_sla_outcome(OLD.status, OLD.deadline_at, OLD.first_response_at)
          IS NOT NULL)
    EXECUTE FUNCTION mentions_sla_tally()""",
)


def is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if is_postgresql():
        for table, columns in BIG_IDS.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.BigInteger(),
                                existing_type=sa.Integer())
        for table in SEQUENCES:
            op.execute(f"ALTER SEQUENCE {table}_id_seq AS bigint")
    for column, old in PAGE_INDEXES.items():
        if old:
            op.drop_index(old, table_name="mentions")
        op.create_index(f"ix_mentions_{column}_id", "mentions", [column, "id"])
    op.create_index("ix_mentions_open", "mentions", OPEN_COLUMNS,
                    sqlite_where=sa.text(OPEN_SQL), postgresql_where=sa.text(OPEN_SQL))
    op.create_index("ix_customers_segment", "customers", ["segment"])
    op.create_table(
        "sla_tallies",
        sa.Column("channel", sa.String(30), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "outcome", name="pk_sla_tallies"),
    )
    op.execute(f"INSERT INTO sla_tallies (channel, outcome, count) "
               f"SELECT channel, {outcome('')}, count(*) FROM mentions "
               f"WHERE ({outcome('')}) IS NOT NULL GROUP BY 1, 2")
    for statement in POSTGRESQL_TRIGGERS if is_postgresql() else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if is_postgresql():
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER mentions_sla_tally_{name} ON mentions")
        op.execute("DROP FUNCTION mentions_sla_tally()")
        op.execute("DROP FUNCTION mention_sla_outcome(text, timestamptz, timestamptz)")
    else:
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("sla_tallies")
    op.drop_index("ix_mentions_open", table_name="mentions")
    op.drop_index("ix_customers_segment", table_name="customers")
    for column, old in PAGE_INDEXES.items():
        op.drop_index(f"ix_mentions_{column}_id", table_name="mentions")
        if old:
            op.create_index(old, "mentions", [column])
    if is_postgresql():
        for table in SEQUENCES:
            op.execute(f"ALTER SEQUENCE {table}_id_seq AS integer")
        for table, columns in BIG_IDS.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.Integer(),
                                existing_type=sa.BigInteger())
