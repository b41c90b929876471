"""Backlog drain, hand-off and agent status through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from listener.app import build_services, init_app
from listener.backlog import BACKLOG
from listener.web.openapi import document
from tests.conftest import BASE_CONFIG, IST, MONDAY_10, make_config
from tests.web.test_api import AUTH, listed, mention, push

MONDAY_1830 = datetime(2026, 11, 23, 18, 30, tzinfo=IST)


def agents(max_open: int = 25) -> list[dict[str, Any]]:
    return [{**a, "max_open": max_open} for a in BASE_CONFIG["agents"]]


async def app_client(aiohttp_client: Any, db_url: str, clock: Any, enricher: Any,
                     handoff: str = "reassign", max_open: int = 25) -> tuple[Any, Any]:
    config = make_config(db_url, agents=agents(max_open), routing={"handoff": handoff})
    app = init_app(build_services(config, clock=clock, enricher=enricher), background=False)
    return await aiohttp_client(app), app[BACKLOG]


async def events(client: Any, mention_id: int) -> list[dict[str, Any]]:
    detail = await (await client.get(f"/api/v1/mentions/{mention_id}", headers=AUTH)).json()
    return detail["events"]


async def set_status(client: Any, agent_id: str, body: Any) -> Any:
    return await client.post(f"/api/v1/agents/{agent_id}/status", json=body, headers=AUTH)


def tweet(ident: str, handle: str) -> dict[str, Any]:
    return {**mention(ident, "Where is my refund?", handle=handle), "lang": "en"}


async def test_capacity_freed_by_an_answer_goes_to_the_backlog(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any) -> None:
    client, backlog = await app_client(aiohttp_client, db_url, clock, enricher, max_open=1)
    await push(client, [{**mention("w-1", channel="web", handle="a"), "lang": "en"},
                        {**mention("w-2", channel="web", handle="b"), "lang": "en"}])
    second, first = await listed(client)
    assert first["assignee"] == "john" and second["assignee"] is None
    assert await backlog.drain(clock.now()) == 0  # nothing freed yet

    answered = await client.post(f"/api/v1/mentions/{first['id']}/respond", json={},
                                 headers=AUTH)
    assert answered.status == 200
    assert await backlog.drain(clock.now()) == 1
    [now_assigned] = [m for m in await listed(client) if m["id"] == second["id"]]
    assert now_assigned["assignee"] == "john" and now_assigned["status"] == "assigned"
    last = (await events(client, second["id"]))[-1]
    assert last["kind"] == "assigned" and last["data"]["reason"].startswith("backlog: ")


async def test_going_away_hands_work_off_and_coming_back_drains(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any) -> None:
    client, _ = await app_client(aiohttp_client, db_url, clock, enricher)
    await push(client, [tweet("t-1", "jane")])
    [tweet_1] = await listed(client)
    assert tweet_1["assignee"] == "ayse"

    response = await set_status(client, "ayse", {"status": "away", "by": "ayse"})
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "away" and body["open"] == 0
    [moved] = await listed(client)
    assert moved["assignee"] == "john"
    last = (await events(client, moved["id"]))[-1]
    assert last["actor"] == "ayse"
    assert last["data"]["reason"].startswith("handoff: ayse away; ")

    await push(client, [tweet("t-2", "someone-else")])  # ingest skips the away agent
    assert {m["assignee"] for m in await listed(client)} == {"john"}
    agents_now = (await (await client.get("/api/v1/agents", headers=AUTH)).json())["items"]
    assert {a["id"]: a["status"] for a in agents_now} == {"ayse": "away", "john": "available"}
    back = await set_status(client, "ayse", {"status": "available"})
    assert (await back.json())["status"] == "available"


async def test_keep_leaves_an_away_agents_work_where_it_is(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any) -> None:
    client, _ = await app_client(aiohttp_client, db_url, clock, enricher, handoff="keep")
    await push(client, [tweet("t-1", "jane")])
    assert (await set_status(client, "ayse", {"status": "away"})).status == 200
    [kept] = await listed(client)
    assert kept["assignee"] == "ayse"


async def test_a_shift_ending_with_nobody_on_shift_unassigns(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any) -> None:
    client, backlog = await app_client(aiohttp_client, db_url, clock, enricher)
    await push(client, [tweet("t-1", "jane")])
    await backlog.shift_tick(MONDAY_10)  # the first tick only notes who is on shift
    assert backlog.next_shift_change(MONDAY_10) == datetime(2026, 11, 23, 18, 0, tzinfo=IST)
    await backlog.shift_tick(MONDAY_1830)
    [waiting] = await listed(client)
    assert waiting["assignee"] is None and waiting["status"] == "new"
    last = (await events(client, waiting["id"]))[-1]
    assert last["kind"] == "unassigned"
    assert last["data"]["reason"].startswith("handoff: ayse shift ended; nobody on shift")
    assert await backlog.drain(MONDAY_1830) == 0
    assert await backlog.shift_tick(datetime(2026, 11, 24, 9, 0, 1, tzinfo=IST)) == 1


async def test_affinity_keeps_a_customer_with_their_agent(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any) -> None:
    client, _ = await app_client(aiohttp_client, db_url, clock, enricher)
    await push(client, [tweet("t-1", "jane")])           # ayse (least loaded, first)
    await push(client, [tweet("t-2", "bob")])            # john (ayse has 1)
    await push(client, [{**tweet("t-3", "jane"),
                         "created_at": "2026-11-23T09:40:00+03:00"}])
    by_ext = {m["external_id"]: m for m in await listed(client)}
    assert by_ext["t-2"]["assignee"] == "john"
    assert by_ext["t-3"]["assignee"] == "ayse"
    last = (await events(client, by_ext["t-3"]["id"]))[-1]
    assert last["data"]["reason"] == "affinity: ayse has this customer"


@pytest.mark.parametrize("body", [{}, {"status": "busy"}, {"status": "away", "by": 5}, []])
async def test_status_refuses_a_bad_body(aiohttp_client: Any, db_url: str, clock: Any,
                                         enricher: Any, body: Any) -> None:
    client, _ = await app_client(aiohttp_client, db_url, clock, enricher)
    assert (await set_status(client, "ayse", body)).status == 422
    assert (await set_status(client, "nobody", {"status": "away"})).status == 404


async def test_status_answer_matches_the_document(aiohttp_client: Any, db_url: str,
                                                  clock: Any, enricher: Any) -> None:
    client, _ = await app_client(aiohttp_client, db_url, clock, enricher)
    body = await (await set_status(client, "john", {"status": "away"})).json()
    doc = document()
    schema = doc["paths"]["/api/v1/agents/{agent_id}/status"]["post"]["responses"]["200"]
    Draft202012Validator({**schema["content"]["application/json"]["schema"],
                          "components": doc["components"]}).validate(body)
