"""Ingest's rows written in driver form (`listener.store.driver_rows`) are the rows
SQLAlchemy wrote: the same bytes on SQLite, the same values read back through the ORM
and the API on both databases, and a concurrent writer's row is a duplicate, not ours."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from listener import db
from listener.app import init_app
from listener.ingest_file import ingest_file
from listener.models import (
    Customer,
    CustomerLink,
    Mention,
    MentionEvent,
)
from listener.store import IngestTx, Store
from listener.store.driver_rows import insert_rows
from tests.conftest import IST

AUTH = {"Authorization": "Bearer test-token"}
NEW_YORK = ZoneInfo("America/New_York")
AT = datetime(2026, 11, 23, 9, 30, 5, 123456, tzinfo=IST)
WHOLE = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # microsecond 0


def customers() -> list[dict[str, Any]]:
    return [{"display_name": "Ayşe", "email": None, "created_at": WHOLE},
            {"display_name": "", "email": "a@example.com", "created_at": AT}]


def mentions(full: bool) -> list[dict[str, Any]]:
    """Every awkward value: zones other than UTC, microsecond 0, None times, a zero
    sentiment given as an int, both booleans; or only the required keys (defaults)."""
    rows = []
    for i, (counted, sentiment) in enumerate(((True, 0), (False, -0.25))):
        row: dict[str, Any] = {
            "source": "s", "channel": "twitter", "external_id": f"x-{i}", "url": None,
            "author_id": None, "customer_id": 1, "created_at": AT + timedelta(minutes=i),
            "ingested_at": WHOLE, "lang": "tr", "thread": None, "search_text": "çay ı",
        }
        if full:
            row.update(text="Çay \u0000 'quoted' ?", sentiment=sentiment, priority="high",
                       status="responded" if i else "assigned", assignee="ayse",
                       in_reply_to=None, first_response_at=WHOLE if i else None,
                       sla_policy="p", deadline_at=AT.astimezone(NEW_YORK),
                       at_risk_at=WHOLE if i else None, next_alert_at=None,
                       alerts_fired=0, follow_up_of=None, rating=5 if i else None,
                       brand="ours", counted=counted)
        rows.append(row)
    return rows


def events() -> list[dict[str, Any]]:
    return [{"mention_id": 1, "kind": "ingested", "at": AT, "actor": "s",
             "data": {"reason": None, "note": "Çok güzel \"x\"", "n": [1, 2.5, True]}},
            {"mention_id": 2, "kind": "assigned", "at": WHOLE, "actor": None, "data": None}]


def links() -> list[dict[str, Any]]:
    return [{"action": "link", "customer_id": 1, "identity": "twitter:@a", "actor": "auto:crm",
             "identity_id": 3, "at": AT, "undo": {"authors": [1], "identities": []}}]


def dump(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Every stored value with its storage class, as SQLite holds it."""
    with sqlite3.connect(path) as connection:
        names = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        values = ", ".join(f"quote({n}), typeof({n})" for n in names)
        return sorted(connection.execute(f"SELECT {values} FROM {table}"), key=repr)


@pytest.mark.parametrize("full", [True, False])
async def test_sqlite_stores_the_bytes_sqlalchemy_stores(tmp_path: Path, full: bool) -> None:
    written = {}
    for way in ("sqlalchemy", "driver"):
        path = tmp_path / f"{way}.db"
        store = Store.open(f"sqlite+aiosqlite:///{path}")
        await db.migrate(store.engine)
        async with store.write() as session:
            for model, rows in ((Customer, customers()), (Mention, mentions(full)),
                                (MentionEvent, events()), (CustomerLink, links())):
                if way == "sqlalchemy":
                    await session.execute(insert(model.__table__), rows)
                else:
                    await insert_rows(session, model.__table__, rows)
        await store.close()
        written[way] = {table: dump(path, table) for table in
                        ("customers", "mentions", "mention_events", "customer_links",
                         "sla_tallies")}
    assert written["driver"] == written["sqlalchemy"]
    assert written["driver"]["mentions"][0][22:24] == ("'2026-11-23 06:30:05.123456'", "text")
    assert written["driver"]["mention_events"][1][10:12] == ("'null'", "text")


async def test_naive_datetimes_and_non_booleans_are_refused_as_before(tmp_path: Path) -> None:
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path}/l.db")
    await db.migrate(store.engine)
    for wrong, error in (({"created_at": AT.replace(tzinfo=None)}, ValueError),
                         ({"counted": 1}, ValueError), ({"counted": "yes"}, TypeError)):
        with pytest.raises(error):
            async with store.write() as session:
                await insert_rows(session, Mention.__table__, [{**mentions(True)[0], **wrong}])
    with pytest.raises(ValueError, match="not columns"):
        async with store.write() as session:
            await insert_rows(session, Mention.__table__, [{**mentions(True)[0], "nope": 1}])
    async with store.read() as session:
        assert await session.scalar(select(Mention.id)) is None
    await store.close()


def line(ident: str, **extra: Any) -> str:
    return json.dumps({"id": ident, "text": "Siparişim gelmedi", "channel": "twitter",
                       "created_at": AT.isoformat(), "url": f"https://x.com/s/{ident}",
                       "author": {"handle": "musteri", "name": "Ali"}, **extra}) + "\n"


async def test_an_ingested_mention_reads_back_the_same_through_orm_and_api(
        services: Any, tmp_path: Path, aiohttp_client: Any) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(line("m-1") + line("m-2", in_reply_to="m-0"), encoding="utf-8")
    assert (await ingest_file(services, path, None, progress=False)).stored == 2
    now = services.clock.now().astimezone(UTC)
    async with services.store.read() as session:
        stored = {m.external_id: m for m in (await session.scalars(select(Mention)))}
        history = list(await session.scalars(select(MentionEvent).order_by(MentionEvent.id)))
    first = stored["m-1"]
    assert first.created_at == AT and first.created_at.tzinfo is UTC
    assert first.created_at.microsecond == 123456
    assert first.ingested_at == now and first.ingested_at.tzinfo is UTC
    assert first.deadline_at is not None and first.deadline_at.tzinfo is UTC
    assert first.counted is True and first.brand == "ours"
    assert stored["m-2"].in_reply_to == "m-0"
    ingested = [e for e in history if e.kind == "ingested" and e.mention_id == first.id]
    assert len(ingested) == 1 and ingested[0].at == now
    assert ingested[0].data == {"reason": None}
    routed = [e for e in history if e.kind != "ingested" and e.mention_id == first.id]
    assert len(routed) == 1 and set(routed[0].data) == {"agent", "reason"}

    client = await aiohttp_client(init_app(services, background=False))
    response = await client.get(f"/api/v1/mentions/{first.id}", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["created_at"] == "2026-11-23T06:30:05.123456+00:00"
    assert body["ingested_at"] == now.isoformat()
    assert body["sla"]["deadline_at"] == first.deadline_at.isoformat()
    assert sorted(body["events"], key=repr) == sorted(
        ({"kind": e.kind, "at": now.isoformat(), "actor": e.actor, "data": e.data}
         for e in [*ingested, *routed]), key=repr)


async def test_a_row_a_concurrent_writer_stored_first_is_a_duplicate(
        services: Any, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the existence check and the insert another process stores one of the
    batch's mentions: it stays theirs, is counted a duplicate, and every other mention
    gets its own id and history."""
    path = tmp_path / "in.jsonl"
    path.write_text(line("m-0"), encoding="utf-8")  # the author exists: no earlier write
    await ingest_file(services, path, None, progress=False)
    other = Store.open(db_url)
    original = IngestTx.insert_mentions

    async def racing(self: IngestTx, rows: list[dict[str, Any]]) -> dict[str, int]:
        async with other.write() as session:
            session.add(Mention(source=rows[0]["source"], channel="twitter",
                                external_id="m-2", text="theirs", created_at=AT,
                                ingested_at=AT))
        return await original(self, rows)

    monkeypatch.setattr(IngestTx, "insert_mentions", racing)
    path.write_text("".join(line(f"m-{i}") for i in range(1, 5)), encoding="utf-8")
    report = await ingest_file(services, path, None, progress=False)
    await other.close()
    assert (report.stored, report.duplicates) == (3, 1)
    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
        history = list(await session.scalars(select(MentionEvent)))
    assert rows["m-2"].text == "theirs"
    assert [e for e in history if e.mention_id == rows["m-2"].id] == []
    for key in ("m-0", "m-1", "m-3", "m-4"):
        kinds = [e.kind for e in history if e.mention_id == rows[key].id]
        assert kinds.count("ingested") == 1, key
        assert rows[key].text == "Siparişim gelmedi"
