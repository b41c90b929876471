"""The queue's search column on a database upgraded with rows in it: rows stored before
0014 are filled exactly as ingest fills new ones, so the queue finds old and new alike;
and the mention page opens any 64-bit id."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from listener import db
from listener.app import build_services, init_app
from tests.conftest import MONDAY_10, make_config
from tests.test_migrations import upgrade_to
from tests.web.logins import login_as
from tests.web.test_api import mention, push
from tests.web.test_dashboard import page, shown

BIG = 2**62 + 7  # a 19-digit id
OLD_ROWS = (  # id, author, text
    (1, 1, "İADE istiyorum, ürün kırık"),
    (2, 2, "Kargom nerede?"),
    (BIG, 2, "Big id"),
)


async def populate_at_0013(engine: Any) -> None:
    """Open mentions as release 0013 stored them, by two authors with Turkish names."""
    at = MONDAY_10.astimezone(UTC).replace(tzinfo=None)
    due = at + timedelta(hours=4)
    sqlite = engine.dialect.name == "sqlite"
    times = {"t": at.isoformat(" ") if sqlite else MONDAY_10,
             "due": due.isoformat(" ") if sqlite else MONDAY_10 + timedelta(hours=4)}
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to, "0013")
        await connection.execute(text(
            "INSERT INTO customers (id, display_name, created_at) VALUES (1, 'Şükrü', :t)"),
            times)
        await connection.execute(text(
            "INSERT INTO authors (id, channel, handle, name, customer_id) VALUES "
            "(1, 'twitter', 'sukru_k', 'Şükrü Kaya', 1), (2, 'twitter', 'ISIL', 'Işıl', 1)"))
        for ident, author, body in OLD_ROWS:
            await connection.execute(text(
                "INSERT INTO mentions (id, source, channel, external_id, author_id, "
                "customer_id, text, sentiment, priority, created_at, ingested_at, status, "
                "deadline_at, alerts_fired, brand, counted) VALUES (:id, 'site-form', "
                "'twitter', :ext, :author, 1, :body, 0, 'normal', :t, :t, 'new', :due, 0, "
                "'ours', true)"),
                {**times, "id": ident, "ext": f"old-{ident}", "author": author, "body": body})
        if not sqlite:  # a sequence goes on from the rows put in by hand
            for table in ("mentions", "customers", "authors"):
                await connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"))


async def search_texts(db_url: str) -> dict[str, str]:
    engine = db.create_engine(db_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT external_id, search_text FROM mentions"))
            return dict(rows.all())
    finally:
        await engine.dispose()


@pytest.fixture
async def upgraded(db_url: str, aiohttp_client: Any, clock: Any, enricher: Any) -> Any:
    """The 0013 rows upgraded to head, and a client signed in as a lead."""
    engine = db.create_engine(db_url)
    try:
        await populate_at_0013(engine)
        await db.migrate(engine)
    finally:
        await engine.dispose()
    services = build_services(make_config(db_url), clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    await login_as(client, services, role="lead")
    return client


async def test_upgrade_fills_the_search_column_and_the_queue_finds_old_and_new_rows(
        upgraded: Any, db_url: str) -> None:
    migrated = await search_texts(db_url)
    assert migrated["old-1"] == "iade istiyorum, urun kirik\nsukru_k\nsukru kaya"
    assert migrated["old-2"] == "kargom nerede?\nisil\nisil"
    same = mention("new-1", OLD_ROWS[0][2], handle="sukru_k", name="Şükrü Kaya")
    assert (await push(upgraded, [same])).status == 202
    ingested = (await search_texts(db_url))["new-1"]
    assert ingested == migrated["old-1"]  # ingest and the migration fold alike

    new_id = BIG + 1
    searches = {"iade": [1, new_id], "ÜRÜN KIRIK": [1, new_id], "şükrü": [1, new_id],
                "SUKRU_K": [1, new_id], "ışıl": [2, BIG], "isil": [2, BIG],
                "kargom": [2], "big": [BIG], "kaya%": [],
                "kirik sukru": [], "kirik\nsukru": []}  # never across two fields
    for query, ids in searches.items():
        html = await page(upgraded, "/?q=" + query.replace("%", "%25").replace("\n", "%0A"),
                          status=400 if "\n" in query else 200)
        assert shown(html) == ids, query
    assert "2 match the filters" in await page(upgraded, "/?q=isil")


async def test_the_mention_page_opens_any_64_bit_id(upgraded: Any) -> None:
    assert "Big id" in await page(upgraded, f"/mentions/{BIG}")
    for beyond in (2**63 - 1, 2**63, 10**19, 10**25):
        response = await upgraded.get(f"/mentions/{beyond}")
        assert response.status == 404, beyond
