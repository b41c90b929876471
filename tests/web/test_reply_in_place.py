"""Answering in place through the API: a reply drafted by Listener is posted on Mastodon
as a reply to the customer's status, and only a reply the platform took stops the clock."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from listener.app import build_services, init_app
from listener.models import MentionEvent
from tests.conftest import make_config
from tests.connectors.test_mastodon import (
    BASE_ID,
    TOKEN,
    FakeMastodon,
    answer,
    fixture,
    reset_in,
    status,
)
from tests.web.test_api import AUTH, listed

CUSTOMER_STATUS = str(BASE_ID + 1)


@pytest.fixture
def upstream() -> FakeMastodon:
    upstream = FakeMastodon()
    upstream.statuses = [status(1, "Siparişim hâlâ gelmedi, rezalet! #acme", minute=30)]
    return upstream


async def start(aiohttp_client: Any, aiohttp_server: Any, upstream: FakeMastodon,
                db_url: str, clock: Any, enricher: Any, **source: Any) -> tuple[Any, Any]:
    """The API over a real Mastodon source pointed at the fake instance, after one poll
    stored the customer's status. Returns the client and the services."""
    server = await aiohttp_server(upstream.app())
    config = make_config(db_url, sources=[{
        "id": "fedi", "kind": "mastodon", "hashtag": "acme", "interval": "60s",
        "base_url": str(server.make_url("")), "access_token": TOKEN, "send_replies": True,
        **source}])
    services = build_services(config, clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    assert await services.coordinator.poll("fedi") == "ok"
    return client, services


async def send(client: Any, mention_id: int) -> Any:
    return await client.post(f"/api/v1/mentions/{mention_id}/reply",
                             json={"template": "apology", "send": True}, headers=AUTH)


async def replied_events(services: Any, mention_id: int) -> list[MentionEvent]:
    async with services.store.read() as session:
        return list(await session.scalars(select(MentionEvent).where(
            MentionEvent.mention_id == mention_id, MentionEvent.kind == "replied")))


async def test_sent_reply_is_posted_in_place_and_stops_the_clock(
        aiohttp_client: Any, aiohttp_server: Any, upstream: FakeMastodon, db_url: str,
        clock: Any, enricher: Any) -> None:
    client, services = await start(aiohttp_client, aiohttp_server, upstream, db_url, clock,
                                   enricher)
    [mention] = await listed(client)
    assert mention["external_id"] == CUSTOMER_STATUS and mention["status"] == "assigned"

    response = await send(client, mention["id"])
    assert response.status == 200
    body = await response.json()
    assert body["sent"] is True
    [posted] = upstream.posted
    assert posted["body"]["in_reply_to_id"] == CUSTOMER_STATUS
    assert posted["body"]["status"] == f"@ali {body['draft']}"  # addressed to the customer
    assert posted["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert body["reply"] == {"id": "113520000000009999",
                             "url": "https://mastodon.example/@acme/113520000000009999"}
    assert body["mention"]["response"]["external_id"] == "113520000000009999"
    assert body["mention"]["status"] == "responded"
    assert body["mention"]["sla"]["state"] == "met"
    [event] = await replied_events(services, mention["id"])
    assert event.data["reply_id"] == "113520000000009999"


async def test_send_replies_off_keeps_it_a_draft_and_says_what_to_set(
        aiohttp_client: Any, aiohttp_server: Any, upstream: FakeMastodon, db_url: str,
        clock: Any, enricher: Any) -> None:
    client, _ = await start(aiohttp_client, aiohttp_server, upstream, db_url, clock, enricher,
                            send_replies=False)
    [mention] = await listed(client)
    response = await send(client, mention["id"])
    assert response.status == 409
    assert "send_replies" in (await response.json())["error"]["message"]
    assert upstream.posted == [] and upstream.calls("/api/v1/statuses") == []


@pytest.mark.parametrize("code,body,headers,ours,retry_after", [
    (422, fixture("unprocessable.json"), {}, 422, None),
    (429, fixture("rate_limited.json"), {"X-RateLimit-Remaining": "0",
                                         "X-RateLimit-Reset": reset_in(90)}, 429, "90"),
    (401, fixture("unauthorized.json"), {}, 502, None),
])
async def test_platform_refusal_is_passed_on_and_the_mention_stays_open(
        aiohttp_client: Any, aiohttp_server: Any, upstream: FakeMastodon, db_url: str,
        clock: Any, enricher: Any, code: int, body: Any, headers: dict[str, str], ours: int,
        retry_after: str | None) -> None:
    client, services = await start(aiohttp_client, aiohttp_server, upstream, db_url, clock,
                                   enricher)
    [mention] = await listed(client)
    upstream.post_answers = [answer(code, body, headers)]

    response = await send(client, mention["id"])
    assert response.status == ours
    error = (await response.json())["error"]
    assert error["code"] == "platform_refused" and TOKEN not in error["message"]
    assert response.headers.get("Retry-After") == retry_after
    [still] = await listed(client)
    assert still["status"] == "assigned" and still["response"] is None
    assert still["sla"]["state"] != "met"
    assert await replied_events(services, mention["id"]) == []
