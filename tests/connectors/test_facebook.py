"""The Facebook Page source against a fake Graph API on 127.0.0.1: visitor posts and
comments from the Page feed with cursor paging, the Page's own comments as native replies,
Graph's error codes, Meta's signed `feed` webhooks, and replies in place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from connectors.base import AuthFailed, RateLimited, ReplyRefused, ReplyTarget, SourceError
from connectors.facebook import FacebookConnector, FacebookSource
from listener.app import build_services, init_app, prepare_database
from listener.models import Mention, MentionEvent
from tests.conftest import MONDAY_10, make_config
from tests.connectors.fake_graph import (
    APP_SECRET,
    PAGE_ID,
    TOKEN,
    VERIFY_TOKEN,
    FakeGraph,
    at,
    graph_error,
    signed,
    unix,
    usage,
)
from tests.web.test_api import AUTH, listed

NOW = MONDAY_10  # 07:00 UTC
PAGE_POST = f"{PAGE_ID}_500"
VISITOR_POST = f"{PAGE_ID}_600"
WEBHOOK = "/api/v1/webhooks/fb-page"
CUSTOMER = {"id": "24000000000001", "name": "Deniz Kaya"}
PAGE = {"id": PAGE_ID, "name": "Acme"}

Connect = Callable[..., FacebookConnector]


def post(post_id: str, message: str, sender: dict[str, str], minute: int) -> dict[str, Any]:
    return {"id": post_id, "message": message, "created_time": at(minute), "from": sender,
            "permalink_url": f"https://www.facebook.com/{post_id}"}


def fb_comment(post_id: str, n: int, message: str = "Kargom nerede?", minute: int = 30,
               sender: dict[str, str] = CUSTOMER, parent: str | None = None) -> dict[str, Any]:
    comment_id = f"{post_id.split('_')[1]}_{n}"
    row: dict[str, Any] = {
        "id": comment_id, "message": message, "created_time": at(minute), "from": sender,
        "permalink_url": f"https://www.facebook.com/{post_id}?comment_id={n}"}
    if parent:
        row["parent"] = {"id": parent}
    return row


@pytest.fixture
def upstream() -> FakeGraph:
    graph = FakeGraph()
    graph.edges[(PAGE_ID, "feed")] = [
        post(VISITOR_POST, "Faturam iki kez kesildi!", CUSTOMER, 20),
        post(PAGE_POST, "Yeni kampanya başladı", PAGE, 0),
    ]
    graph.edges[(PAGE_POST, "comments")] = []
    graph.edges[(VISITOR_POST, "comments")] = []
    return graph


@pytest.fixture
async def server(aiohttp_server: Any, upstream: FakeGraph) -> Any:
    return await aiohttp_server(upstream.app())


def source(server: Any, **overrides: Any) -> dict[str, Any]:
    return {"id": "fb-page", "kind": "facebook", "page_id": PAGE_ID, "access_token": TOKEN,
            "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
            "base_url": str(server.make_url("")), "interval": "300s", **overrides}


@pytest.fixture
async def connect(server: Any) -> AsyncIterator[Connect]:
    made: list[FacebookConnector] = []

    def make(**overrides: Any) -> FacebookConnector:
        made.append(FacebookConnector(FacebookSource.model_validate(
            source(server, **overrides))))
        return made[-1]

    yield make
    for connector in made:
        await connector.close()


async def test_visitor_posts_and_comments_are_mentions_and_the_pages_answers_native_replies(
        upstream: FakeGraph, connect: Connect) -> None:
    question = fb_comment(PAGE_POST, 1, "Bu kampanya İzmir'de geçerli mi?", minute=25)
    upstream.edges[(PAGE_POST, "comments")] = [
        question,
        fb_comment(PAGE_POST, 2, "Evet, tüm şehirlerde!", minute=35, sender=PAGE,
                   parent=question["id"]),
        fb_comment(PAGE_POST, 3, "Detaylar sitemizde", minute=5, sender=PAGE),  # answers nobody
    ]
    upstream.edges[(VISITOR_POST, "comments")] = [
        fb_comment(VISITOR_POST, 4, "Sizinle iletişime geçiyoruz", minute=40, sender=PAGE)]
    batch = await connect().fetch(None, NOW)

    assert [(i.external_id, i.text, i.author.handle, i.author.name, i.channel, i.url,
             i.created_at, i.by_brand, i.in_reply_to) for i in batch.items] == [
        (VISITOR_POST, "Faturam iki kez kesildi!", CUSTOMER["id"], "Deniz Kaya", "facebook",
         f"https://www.facebook.com/{VISITOR_POST}", datetime(2026, 11, 23, 6, 20, tzinfo=UTC),
         False, None),
        ("500_1", "Bu kampanya İzmir'de geçerli mi?", CUSTOMER["id"], "Deniz Kaya", "facebook",
         f"https://www.facebook.com/{PAGE_POST}?comment_id=1",
         datetime(2026, 11, 23, 6, 25, tzinfo=UTC), False, None),
        ("500_2", "Evet, tüm şehirlerde!", PAGE_ID, "Acme", "facebook",
         f"https://www.facebook.com/{PAGE_POST}?comment_id=2",
         datetime(2026, 11, 23, 6, 35, tzinfo=UTC), True, "500_1"),
        ("600_4", "Sizinle iletişime geçiyoruz", PAGE_ID, "Acme", "facebook",
         f"https://www.facebook.com/{VISITOR_POST}?comment_id=4",
         datetime(2026, 11, 23, 6, 40, tzinfo=UTC), True, VISITOR_POST),
    ]  # the Page's own post and its comment answering nobody are not mentions
    [feed_call] = upstream.calls(f"{PAGE_ID}/feed")
    assert feed_call["query"]["fields"] == "id,message,created_time,from,permalink_url"
    assert all(r["query"].get("filter") == "stream" for r in upstream.calls("/comments"))


async def test_comments_are_read_across_cursor_pages(upstream: FakeGraph,
                                                     connect: Connect) -> None:
    upstream.edges[(PAGE_POST, "comments")] = [
        fb_comment(PAGE_POST, n, f"yorum {n}", minute=n % 55) for n in range(1, 131)]
    batch = await connect().fetch(None, NOW)
    assert len([i for i in batch.items if i.thread == PAGE_POST]) == 130
    afters = [r["query"].get("after") for r in upstream.calls(f"{PAGE_POST}/comments")]
    assert afters == [None, "50", "100"]


async def test_an_empty_feed_gives_an_empty_batch(upstream: FakeGraph,
                                                  connect: Connect) -> None:
    upstream.edges[(PAGE_ID, "feed")] = []
    batch = await connect().fetch(None, NOW)
    assert batch.items == [] and batch.rejected == [] and batch.cursor


async def test_usage_near_the_limit_slows_the_source(upstream: FakeGraph,
                                                     connect: Connect) -> None:
    connector = connect()
    upstream.usage_headers = usage(76)
    await connector.fetch(None, NOW)
    assert connector.interval(NOW) == timedelta(seconds=1200)
    assert connector.status(NOW)["graph_usage"]["state"] == "slowed"


async def test_rate_limit_then_success_expired_token_and_5xx(upstream: FakeGraph,
                                                             connect: Connect) -> None:
    connector = connect()
    upstream.answers = [graph_error(32, "Page request limit reached", status=403)]
    with pytest.raises(RateLimited):
        await connector.fetch(None, NOW)
    assert len((await connector.fetch(None, NOW)).items) == 1
    upstream.answers = [web.Response(status=502, text="Bad Gateway")]
    with pytest.raises(SourceError) as caught:
        await connector.fetch(None, NOW)
    assert not isinstance(caught.value, AuthFailed | RateLimited)
    with pytest.raises(AuthFailed) as expired:
        await connect(access_token="old-page-token").fetch(None, NOW)
    assert "check access_token" in str(expired.value)
    assert "old-page-token" not in str(expired.value)


async def test_a_malformed_comment_is_rejected_and_its_neighbours_kept(
        upstream: FakeGraph, connect: Connect) -> None:
    upstream.edges[(PAGE_POST, "comments")] = [
        fb_comment(PAGE_POST, 1, minute=10),
        {"id": "500_9", "message": "who am I", "created_time": at(12)},  # no `from`
        fb_comment(PAGE_POST, 2, "iade?", minute=30)]
    batch = await connect().fetch(None, NOW)
    assert [i.external_id for i in batch.items] == ["500_1", VISITOR_POST, "500_2"]
    [rejected] = batch.rejected
    assert rejected.external_id == "500_9" and "from is missing" in rejected.reason


async def test_reply_comments_on_the_comment_or_the_visitor_post(upstream: FakeGraph,
                                                                  connect: Connect) -> None:
    connector = connect()
    sent = await connector.reply(ReplyTarget("500_1", CUSTOMER["id"]), "Evet, geçerli.")
    await connector.reply(ReplyTarget(VISITOR_POST, CUSTOMER["id"]), "Bakıyoruz.")
    assert [(p["node"], p["edge"], p["form"]) for p in upstream.posted] == [
        ("500_1", "comments", {"message": "Evet, geçerli."}),
        (VISITOR_POST, "comments", {"message": "Bakıyoruz."})]
    assert sent.external_id == upstream.posted[0]["id"]

    upstream.post_answers = [graph_error(190, "Session has expired")]
    with pytest.raises(ReplyRefused) as caught:
        await connector.reply(ReplyTarget("500_1", CUSTOMER["id"]), "Tekrar")
    assert caught.value.status == 401 and len(upstream.posted) == 2


# --- through the running service, on SQLite and PostgreSQL -------------------------------


def feed_delivery(*values: dict[str, Any]) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": unix(36), "changes": [
        {"field": "feed", "value": value} for value in values]}]}


async def start(aiohttp_client: Any, server: Any, db_url: str, clock: Any, enricher: Any,
                **overrides: Any) -> tuple[Any, Any]:
    config = make_config(db_url, sources=[source(server, **overrides)])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    return await aiohttp_client(init_app(services, background=False)), services


async def stored(services: Any) -> list[Mention]:
    async with services.store.read() as session:
        return list(await session.scalars(select(Mention).order_by(Mention.id)))


async def test_feed_webhooks_store_added_comments_once_and_ignore_edits(
        aiohttp_client: Any, server: Any, upstream: FakeGraph, db_url: str, clock: Any,
        enricher: Any) -> None:
    client, services = await start(aiohttp_client, server, db_url, clock, enricher)
    added = {"from": CUSTOMER, "item": "comment", "comment_id": "500_1", "post_id": PAGE_POST,
             "parent_id": PAGE_POST, "verb": "add", "created_time": unix(30),
             "message": "Kargom nerede?"}
    edited = {**added, "comment_id": "500_7", "verb": "edited", "message": "düzenlendi"}
    raw, headers = signed(feed_delivery(added, edited))
    response = await client.post(WEBHOOK, data=raw, headers=headers)
    assert response.status == 202 and (await response.json())["stored"] == 1

    bad_raw, bad_headers = signed(feed_delivery(added), secret="guessed")
    assert (await client.post(WEBHOOK, data=bad_raw, headers=bad_headers)).status == 401

    upstream.edges[(PAGE_ID, "feed")] = [post(PAGE_POST, "Kampanya", PAGE, 0)]
    upstream.edges[(PAGE_POST, "comments")] = [fb_comment(PAGE_POST, 1, minute=30)]
    assert await services.coordinator.poll("fb-page") == "ok"
    [mention] = await stored(services)
    assert (mention.external_id, mention.text, mention.channel) == (
        "500_1", "Kargom nerede?", "facebook")
    assert mention.created_at.astimezone(UTC) == datetime(2026, 11, 23, 6, 30, tzinfo=UTC)

    hub = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "77"}
    assert await (await client.get(WEBHOOK, params=hub)).text() == "77"
    wrong = await client.get(WEBHOOK, params={**hub, "hub.verify_token": "x"})
    assert wrong.status == 403
    await services.store.close()
    await services.coordinator.close()


async def test_a_reply_sent_from_listener_is_posted_and_stops_the_clock(
        aiohttp_client: Any, server: Any, upstream: FakeGraph, db_url: str, clock: Any,
        enricher: Any) -> None:
    client, services = await start(aiohttp_client, server, db_url, clock, enricher,
                                   send_replies=True)
    assert await services.coordinator.poll("fb-page") == "ok"
    [mention] = await listed(client)
    assert mention["external_id"] == VISITOR_POST

    upstream.post_answers = [graph_error(200, "Permissions error", status=403)]
    refused = await client.post(f"/api/v1/mentions/{mention['id']}/reply",
                                json={"template": "apology", "send": True}, headers=AUTH)
    assert refused.status == 502
    assert (await listed(client))[0]["response"] is None

    response = await client.post(f"/api/v1/mentions/{mention['id']}/reply",
                                 json={"template": "apology", "send": True}, headers=AUTH)
    assert response.status == 200, await response.text()
    body = await response.json()
    [posted] = upstream.posted
    assert (posted["node"], posted["edge"]) == (VISITOR_POST, "comments")
    assert posted["form"]["message"] == body["draft"]
    assert body["mention"]["status"] == "responded"
    assert body["mention"]["response"]["external_id"] == posted["id"]
    async with services.store.read() as session:
        events = (await session.scalars(select(MentionEvent).where(
            MentionEvent.mention_id == mention["id"], MentionEvent.kind == "replied"))).all()
    assert [e.data["reply_id"] for e in events] == [posted["id"]]
    await services.store.close()
    await services.coordinator.close()
