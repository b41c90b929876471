"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from connectors.webhook import SIGNATURE_HEADER, sign
from listener import db
from listener.app import build_services, init_app
from listener.models import Base
from tests.conftest import MONDAY_10, make_config


async def test_migrations_reach_head_and_match_the_models(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        assert not await db.at_head(engine)
        await db.migrate(engine)
        assert await db.current_revision(engine) == db.head_revision()
        await db.migrate(engine)  # running again is a no-op

        def diff(connection: object) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()


def upgrade_to(connection: Any, revision: str) -> None:
    config = db.alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def populate_at_0011(engine: Any) -> None:
    """A few rows as release 0011 stored them: an answered mention, one ignored after its
    clock started, an open one, their history and an alert."""
    at = MONDAY_10.astimezone(UTC).replace(tzinfo=None)
    stamp = at.isoformat(" ")
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to, "0011")
        statements = [
            "INSERT INTO customers (id, display_name, created_at) VALUES (1, 'Ada', :t)",
            "INSERT INTO authors (id, channel, handle, name, customer_id) "
            "VALUES (1, 'web', 'ada', 'Ada', 1)",
            *(f"INSERT INTO mentions (id, source, channel, external_id, author_id, customer_id,"
              f" text, sentiment, priority, created_at, ingested_at, status, deadline_at, "
              f"first_response_at, alerts_fired, brand, counted) VALUES ({i}, 'site-form', "
              f"'web', 'old-{i}', 1, 1, 'Kargom nerede?', 0, 'normal', :t, :t, '{status}', "
              f":t, {answered}, 0, 'ours', true)"
              for i, status, answered in ((1, "responded", ":t"), (2, "ignored", "NULL"),
                                          (3, "new", "NULL"))),
            "INSERT INTO mention_events (mention_id, kind, at) VALUES (1, 'ingested', :t)",
            "INSERT INTO alert_outbox (dedupe_key, mention_id, sink, kind, payload, created_at,"
            " next_attempt_at, attempts, state) VALUES ('1:breached', 1, 'slack', 'breached',"
            " '{}', :t, :t, 0, 'sent')",
        ]
        for statement in statements:
            value = stamp if engine.dialect.name == "sqlite" else MONDAY_10
            await connection.execute(text(statement), {"t": value})


async def test_upgrading_a_populated_database_makes_mention_ids_64_bit(
        db_url: str, aiohttp_client: Any, clock: Any, enricher: Any) -> None:
    engine = db.create_engine(db_url)
    try:
        await populate_at_0011(engine)
        await db.migrate(engine)
        big = 2**31 + 5
        async with engine.begin() as connection:
            tallies = (await connection.execute(
                text("SELECT channel, outcome, count FROM sla_tallies"))).all()
            assert sorted(tuple(row) for row in tallies) == [("web", "met", 1),
                                                              ("web", "unanswered", 1)]
            await connection.execute(text(
                "INSERT INTO mentions (id, source, channel, external_id, text, sentiment, "
                "priority, created_at, ingested_at, status, alerts_fired, brand, counted) "
                "SELECT :id, source, channel, 'big', text, sentiment, priority, created_at, "
                "ingested_at, 'responded', 0, brand, counted FROM mentions WHERE id = 1"),
                {"id": big})
            await connection.execute(text(
                "INSERT INTO mention_events (mention_id, kind, at) "
                "SELECT :id, kind, at FROM mention_events WHERE mention_id = 1"), {"id": big})
            if engine.dialect.name == "postgresql":  # where a sequence past 2**31 would be
                for table in ("mentions", "customers", "authors"):
                    await connection.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"))
    finally:
        await engine.dispose()
    services = build_services(make_config(db_url), clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    auth = {"Authorization": "Bearer test-token"}
    body = await (await client.get(f"/api/v1/mentions/{big}", headers=auth)).json()
    assert (body["id"], body["external_id"], len(body["events"])) == (big, "big", 1)
    payload = json.dumps({"id": "after", "text": "Siparişim nerede?", "channel": "web",
                          "created_at": MONDAY_10.isoformat(),
                          "author": {"handle": "ada", "name": "Ada"}}).encode()
    pushed = await client.post("/api/v1/webhooks/site-form", data=payload, headers={
        "Content-Type": "application/json", SIGNATURE_HEADER: sign("s3cret-hook", payload)})
    assert pushed.status == 202, await pushed.text()
    items = (await (await client.get("/api/v1/mentions?limit=2", headers=auth)).json())["items"]
    assert [(m["id"], m["external_id"]) for m in items] == [(big + 1, "after"), (big, "big")]
    cursor = (await (await client.get("/api/v1/mentions?limit=1", headers=auth)).json())
    assert cursor["next_cursor"]
    assert (await client.get(f"/api/v1/mentions/{2**63}", headers=auth)).status == 404
    summary = await (await client.get("/api/v1/sla/summary", headers=auth)).json()
    assert summary["states"]["met"] == 1 and summary["open"] == 2


def downgrade_to(connection: Any, revision: str) -> None:
    config = db.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


def history_indexes(connection: Any) -> dict[str, tuple[list[str], bool]]:
    """Indexes of mentions on customer_id or author_id: (columns, partial on answered)."""
    found = {}
    for index in inspect(connection).get_indexes("mentions"):
        columns = index["column_names"]
        if columns[0] in ("customer_id", "author_id"):
            where = str(index.get("dialect_options", {}).get(
                f"{connection.dialect.name}_where", ""))
            found[index["name"]] = (columns, "first_response_at IS NOT NULL" in where)
    return found


BEFORE_0016 = {"ix_mentions_customer_id": (["customer_id"], False),
               "ix_mentions_author_id": (["author_id"], False)}
AT_0016 = {"ix_mentions_customer_created": (["customer_id", "created_at"], False),
           "ix_mentions_author_created": (["author_id", "created_at"], False),
           "ix_mentions_customer_answered": (["customer_id", "first_response_at"], True)}
AT_0017 = {name: index for name, index in AT_0016.items()
           if name != "ix_mentions_author_created"}


async def test_history_indexes_go_up_down_and_up_again_on_a_populated_database(
        db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        await populate_at_0011(engine)
        stored = text("SELECT id, author_id, customer_id, created_at, first_response_at "
                      "FROM mentions ORDER BY id")
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to, "0015")
            rows = (await connection.execute(stored)).all()
            assert len(rows) == 3
            for move, revision, indexes in ((upgrade_to, "0016", AT_0016),
                                            (downgrade_to, "0015", BEFORE_0016),
                                            (upgrade_to, "0017", AT_0017),
                                            (downgrade_to, "0016", AT_0016),
                                            (upgrade_to, "0017", AT_0017)):
                await connection.run_sync(move, revision)
                assert await connection.run_sync(history_indexes) == indexes, revision
                assert (await connection.execute(stored)).all() == rows, revision
    finally:
        await engine.dispose()
