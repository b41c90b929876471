"""A real time at the very ends of the calendar (9999-12-31, year 1) parses, but no
deadline can be planned for it: such an item is kept in rejected_items with its reason
and its neighbours are stored, through a webhook and through `listener ingest`, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import Rejected
from connectors.webhook import sign
from listener.app import init_app, prepare_database
from listener.models import RejectedItem
from listener.pipeline.ingest import SourceInfo
from listener.store import Store
from tests.conftest import MONDAY_10
from tests.test_cli import line, listener, stored_mentions, write_config
from tests.web.test_api import AUTH, SECRET

TOO_LATE = "9999-12-31T23:59:59Z"
TOO_EARLY = "0001-01-01T00:00:00+05:00"


def mention(ident: str, created_at: str) -> dict[str, Any]:
    return {"id": ident, "text": "Kargom nerede?", "channel": "twitter",
            "created_at": created_at, "author": {"handle": f"musteri-{ident}"}}


async def quarantined(store: Store) -> dict[str | None, str]:
    async with store.read() as session:
        return {row.external_id: row.reason for row in await session.scalars(
            select(RejectedItem))}


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


async def test_a_webhook_keeps_items_at_the_calendars_ends_aside(client: Any,
                                                                 services: Any) -> None:
    body = json.dumps([mention("late", TOO_LATE), mention("ok", MONDAY_10.isoformat()),
                       mention("early", TOO_EARLY)]).encode()
    response = await client.post("/api/v1/webhooks/site-form", data=body, headers={
        "X-Listener-Signature": sign(SECRET, body), "Content-Type": "application/json"})
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["stored"] == 1
    shown = await client.get(f"/api/v1/mentions/{answer['ids'][0]}", headers=AUTH)
    assert (await shown.json())["external_id"] == "ok"
    assert await quarantined(services.store) == {"late": "created_at out of range",
                                                 "early": "created_at out of range"}


async def test_a_rejects_long_external_id_is_cut_to_fit(services: Any) -> None:
    await prepare_database(services, migrate=True)
    await services.pipeline.ingest(SourceInfo("site-form", "webhook"), [], rejected=[
        Rejected("no text", "{}", external_id="x" * 5000)])
    assert await quarantined(services.store) == {"x" * 200: "no text"}


def test_listener_ingest_counts_them_as_rejected(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    data = tmp_path / "backfill.jsonl"
    late = json.loads(line("late", MONDAY_10)) | {"created_at": TOO_LATE}
    data.write_text(line("ok", MONDAY_10) + "\n" + json.dumps(late) + "\n", encoding="utf-8")
    result = listener("ingest", "--config", str(config), str(data))
    assert result.returncode == 0, result.stderr
    assert "1 stored" in result.stdout and "1 rejected" in result.stdout
    assert "id late: kept in rejected_items: created_at out of range" in result.stderr
    assert [m.external_id for m in stored_mentions(db_url)] == ["ok"]

    async def reasons() -> dict[str | None, str]:
        store = Store.open(db_url)
        try:
            return await quarantined(store)
        finally:
            await store.close()

    assert asyncio.run(reasons()) == {"late": "created_at out of range"}
