"""`sla_tallies` stays equal to a full recount when mentions arrive many to a statement
(PostgreSQL's tally trigger runs once per INSERT statement since 0015) and across
upgrading and downgrading that migration on a populated database."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from alembic import command
from sqlalchemy import text

from listener import db
from tests.conftest import MONDAY_10

AT = MONDAY_10.astimezone(UTC).replace(tzinfo=None)
OUTCOME = ("CASE WHEN deadline_at IS NULL OR status IN ('new', 'assigned') THEN NULL "
           "WHEN first_response_at IS NULL THEN 'unanswered' "
           "WHEN first_response_at <= deadline_at THEN 'met' ELSE 'missed' END")
# status, deadline (hours after AT, None: no clock), first response (hours after AT)
SHAPES = [("responded", 1, 0), ("responded", 1, 2), ("ignored", 1, None), ("new", 1, None),
          ("assigned", 1, None), ("responded", None, 0), ("resolved", 3, 1),
          ("closed", 1, 5)]
CHANNELS = ("web", "twitter", "email")


def migrate_to(connection: Any, revision: str, down: bool = False) -> None:
    config = db.alembic_config()
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


def stamp(engine: Any, hours: int | None) -> Any:
    if hours is None:
        return None
    value = AT + timedelta(hours=hours)
    return value.isoformat(" ") if engine.dialect.name == "sqlite" else value.replace(
        tzinfo=UTC)


async def insert_batch(engine: Any, first: int, count: int) -> None:
    """`count` mentions of mixed channels and outcomes in ONE INSERT statement, one of
    them repeats skipped by ON CONFLICT (it must not be counted)."""
    rows, params = [], {"t": stamp(engine, 0)}
    for n in range(first, first + count):
        status, deadline, answered = SHAPES[n % len(SHAPES)]
        external = "dup" if n in (first + 1, first + 2) else f"m-{n}"
        rows.append(f"('site-form', '{CHANNELS[n % 3]}', '{external}', 'x', 0, 'normal', "
                    f":t, :t, '{status}', :d{n}, :r{n}, 0, 'ours', true)")
        params |= {f"d{n}": stamp(engine, deadline), f"r{n}": stamp(engine, answered)}
    async with engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO mentions (source, channel, external_id, text, sentiment, priority, "
            "created_at, ingested_at, status, deadline_at, first_response_at, alerts_fired, "
            "brand, counted) VALUES " + ", ".join(rows)
            + " ON CONFLICT (source, external_id) DO NOTHING"), params)


async def tallies_and_recount(engine: Any) -> tuple[list[tuple], list[tuple]]:
    async with engine.connect() as connection:
        kept = (await connection.execute(text(
            "SELECT channel, outcome, count FROM sla_tallies WHERE count <> 0"))).all()
        counted = (await connection.execute(text(
            f"SELECT channel, {OUTCOME} AS outcome, count(*) FROM mentions "
            f"WHERE ({OUTCOME}) IS NOT NULL GROUP BY 1, 2"))).all()
    return sorted(map(tuple, kept)), sorted(map(tuple, counted))


async def test_a_many_row_insert_adds_exactly_its_settled_mentions(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        await db.migrate(engine)
        await insert_batch(engine, 0, 50)
        await insert_batch(engine, 100, 37)  # a second statement onto the same tally rows
        async with engine.begin() as connection:  # statements with nothing settled in them
            await connection.execute(text(
                "INSERT INTO mentions (source, channel, external_id, text, sentiment, "
                "priority, created_at, ingested_at, status, alerts_fired, brand, counted) "
                "SELECT source, channel, 'open-' || id, text, sentiment, priority, "
                "created_at, ingested_at, 'new', 0, brand, counted FROM mentions WHERE false"))
            await connection.execute(text(  # settle some, then delete some, row-level paths
                "UPDATE mentions SET status = 'responded', first_response_at = created_at "
                "WHERE status = 'assigned'"))
            await connection.execute(text("DELETE FROM mentions WHERE id % 7 = 0"))
        kept, counted = await tallies_and_recount(engine)
        assert kept == counted
        assert {outcome for _, outcome, _ in kept} == {"met", "missed", "unanswered"}
        assert sum(count for *_, count in kept) > 40
    finally:
        await engine.dispose()


async def test_migrating_0015_down_and_up_on_a_populated_database_keeps_counts(
        db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrate_to, "0014")
        await insert_batch(engine, 0, 20)  # counted by 0012's per-row trigger
        async with engine.begin() as connection:
            await connection.run_sync(migrate_to, "0015")
        await insert_batch(engine, 100, 20)
        async with engine.begin() as connection:
            await connection.run_sync(migrate_to, "0014", True)
        await insert_batch(engine, 200, 20)
        kept, counted = await tallies_and_recount(engine)
        assert kept == counted
        async with engine.begin() as connection:
            await connection.run_sync(migrate_to, "0015")
        await insert_batch(engine, 300, 20)
        kept, counted = await tallies_and_recount(engine)
        assert kept == counted and sum(count for *_, count in kept) > 40
        if engine.dialect.name == "postgresql":  # exactly one insert trigger either way
            async with engine.connect() as connection:
                triggers = (await connection.execute(text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'mentions'::regclass "
                    "AND NOT tgisinternal ORDER BY 1"))).scalars().all()
            assert triggers == ["mentions_sla_tally_delete", "mentions_sla_tally_insert",
                                "mentions_sla_tally_update"]
    finally:
        await engine.dispose()
