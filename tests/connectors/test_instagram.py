"""The Instagram source against a fake Graph API on 127.0.0.1: comments under recent media
with cursor paging, usage headers and Graph's error codes, Meta's signed webhooks and
handshake, and replies in place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from connectors.base import AuthFailed, RateLimited, ReplyRefused, ReplyTarget, SourceError
from connectors.instagram import InstagramConnector, InstagramSource
from listener.app import build_services, init_app, prepare_database
from listener.models import Mention, MentionEvent, RejectedItem
from tests.conftest import MONDAY_10, make_config
from tests.connectors.fake_graph import (
    ACCOUNT_ID,
    APP_SECRET,
    BRAND_USERNAME,
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
MEDIA = "17900000000000100"
PERMALINK = "https://www.instagram.com/p/DAbCdEf/"
WEBHOOK = "/api/v1/webhooks/insta"

Connect = Callable[..., InstagramConnector]


def comment(n: int, text: str = "Kargom nerede?", minute: int = 30, username: str = "deniz",
            parent: str | None = None) -> dict[str, Any]:
    row = {"id": f"1790000000000{n:04d}", "text": text, "username": username,
           "timestamp": at(minute)}
    if parent:
        row["parent_id"] = parent
    return row


def with_replies(top: dict[str, Any], *replies: dict[str, Any]) -> dict[str, Any]:
    return {**top, "replies": {"data": list(replies)}}


@pytest.fixture
def upstream() -> FakeGraph:
    graph = FakeGraph()
    graph.edges[(ACCOUNT_ID, "media")] = [
        {"id": MEDIA, "caption": "Yeni sezon", "permalink": PERMALINK, "timestamp": at(0)}]
    graph.edges[(MEDIA, "comments")] = []
    graph.nodes[MEDIA] = {"id": MEDIA, "permalink": PERMALINK}
    return graph


@pytest.fixture
async def server(aiohttp_server: Any, upstream: FakeGraph) -> Any:
    return await aiohttp_server(upstream.app())


def source(server: Any, **overrides: Any) -> dict[str, Any]:
    return {"id": "insta", "kind": "instagram", "account_id": ACCOUNT_ID,
            "access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
            "base_url": str(server.make_url("")), "interval": "300s", **overrides}


@pytest.fixture
async def connect(server: Any) -> AsyncIterator[Connect]:
    made: list[InstagramConnector] = []

    def make(**overrides: Any) -> InstagramConnector:
        made.append(InstagramConnector(InstagramSource.model_validate(
            source(server, **overrides))))
        return made[-1]

    yield make
    for connector in made:
        await connector.close()


async def test_comments_become_mentions_with_exact_fields_and_brand_replies_marked(
        upstream: FakeGraph, connect: Connect) -> None:
    top = comment(1, "Siparişim 2 haftadır gelmedi!", minute=30)
    upstream.edges[(MEDIA, "comments")] = [
        with_replies(top, comment(2, "@deniz DM'den yazar mısınız?", minute=40,
                                  username=BRAND_USERNAME, parent=top["id"])),
        comment(3, "Bizden duyuru: kampanya başladı", minute=10, username=BRAND_USERNAME),
    ]
    batch = await connect().fetch(None, NOW)

    assert [(i.external_id, i.text, i.author.handle, i.channel, i.url, i.created_at)
            for i in batch.items] == [
        (top["id"], "Siparişim 2 haftadır gelmedi!", "deniz", "instagram", PERMALINK,
         datetime(2026, 11, 23, 6, 30, tzinfo=UTC)),
        (comment(2)["id"], "@deniz DM'den yazar mısınız?", "acme", "instagram", PERMALINK,
         datetime(2026, 11, 23, 6, 40, tzinfo=UTC)),
    ]  # the brand's own top-level comment answers nobody: not kept
    customer, reply = batch.items
    assert not customer.by_brand and customer.thread == MEDIA
    assert reply.by_brand and reply.in_reply_to == top["id"]
    [media_call] = upstream.calls(f"{ACCOUNT_ID}/media")
    assert media_call["query"]["fields"] == "id,caption,permalink,timestamp"
    [comments_call] = upstream.calls(f"{MEDIA}/comments")
    assert comments_call["query"]["fields"].startswith("id,text,username,timestamp,parent_id")
    assert all(TOKEN not in r["url"] for r in upstream.requests)  # a header, not the URL


async def test_comments_are_read_across_cursor_pages_and_the_next_poll_is_incremental(
        upstream: FakeGraph, connect: Connect) -> None:
    upstream.edges[(MEDIA, "comments")] = [comment(n, f"yorum {n}", minute=n % 50)
                                           for n in range(120)]
    connector = connect()
    batch = await connector.fetch(None, NOW)
    assert len(batch.items) == 120
    afters = [r["query"].get("after") for r in upstream.calls(f"{MEDIA}/comments")]
    assert afters == [None, "50", "100"]

    upstream.edges[(MEDIA, "comments")].insert(0, comment(500, "yeni yorum", minute=58))
    again = await connector.fetch(batch.cursor, NOW)
    assert again.items[-1].text == "yeni yorum"
    # older comments come back only within the 10-minute overlap before the newest seen
    # (06:49), as harmless duplicates
    assert min(i.created_at for i in again.items) == datetime(2026, 11, 23, 6, 39, tzinfo=UTC)


async def test_an_empty_account_gives_an_empty_batch(upstream: FakeGraph,
                                                     connect: Connect) -> None:
    upstream.edges[(ACCOUNT_ID, "media")] = []
    batch = await connect().fetch(None, NOW)
    assert batch.items == [] and batch.rejected == [] and batch.cursor
    assert upstream.calls("/comments") == []


async def test_usage_near_the_limit_stretches_the_interval_and_pauses_at_the_top(
        upstream: FakeGraph, connect: Connect) -> None:
    connector = connect()
    upstream.usage_headers = usage(40)
    await connector.fetch(None, NOW)
    assert connector.interval(NOW) is None
    assert connector.status(NOW)["graph_usage"]["state"] == "normal"

    upstream.usage_headers = usage(80)
    batch = await connector.fetch(None, NOW)
    assert connector.interval(NOW) == timedelta(seconds=1200)  # 4 × the configured 300s
    assert batch.not_before is None
    assert connector.status(NOW)["graph_usage"] == {
        "app_percent": 80.0, "business_percent": None, "state": "slowed",
        "regain_minutes": None}

    upstream.usage_headers = usage(20, business=97, regain=12)
    batch = await connector.fetch(None, NOW)
    assert batch.not_before == NOW + timedelta(minutes=12)
    assert connector.status(NOW)["graph_usage"]["state"] == "paused"


@pytest.mark.parametrize("code,status", [(4, 400), (32, 403), (613, 400), (80002, 400)])
async def test_graph_rate_limit_codes_wait_then_the_next_poll_succeeds(
        upstream: FakeGraph, connect: Connect, code: int, status: int) -> None:
    upstream.edges[(MEDIA, "comments")] = [comment(1)]
    connector = connect()
    upstream.answers = [graph_error(code, "Application request limit reached", status=status,
                                    headers={"Retry-After": "120"})]
    with pytest.raises(RateLimited) as caught:
        await connector.fetch(None, NOW)
    assert caught.value.retry_after == 120
    assert [i.external_id for i in (await connector.fetch(None, NOW)).items] == [
        comment(1)["id"]]


async def test_a_rate_limit_without_retry_after_waits_for_metas_estimate(
        upstream: FakeGraph, connect: Connect) -> None:
    upstream.answers = [graph_error(80002, "too many calls", headers=usage(100, 100, 7))]
    with pytest.raises(RateLimited) as caught:
        await connect().fetch(None, NOW)
    assert caught.value.retry_after == 7 * 60


async def test_an_expired_token_names_the_key_to_check_never_its_value(
        server: Any, connect: Connect) -> None:
    with pytest.raises(AuthFailed) as caught:
        await connect(access_token="an-old-token").fetch(None, NOW)
    message = str(caught.value)
    assert "check access_token" in message and "expired" in message
    assert "an-old-token" not in message


async def test_server_errors_and_broken_bodies_are_source_errors(upstream: FakeGraph,
                                                                 connect: Connect) -> None:
    connector = connect()
    for answer in (web.Response(status=500, text="Internal error"),
                   web.Response(status=503, text="<html>down</html>", content_type="text/html"),
                   web.json_response(["not", "an", "object"])):
        upstream.answers = [answer]
        with pytest.raises(SourceError) as caught:
            await connector.fetch(None, NOW)
        assert not isinstance(caught.value, AuthFailed | RateLimited)


async def test_a_malformed_comment_is_rejected_and_its_neighbours_kept(
        upstream: FakeGraph, connect: Connect) -> None:
    broken = {"id": "17900000000009999", "username": "ghost", "timestamp": at(20)}  # no text
    upstream.edges[(MEDIA, "comments")] = [comment(1, minute=10), broken,
                                           comment(2, "iade ne zaman?", minute=30)]
    batch = await connect().fetch(None, NOW)
    assert [i.text for i in batch.items] == ["Kargom nerede?", "iade ne zaman?"]
    [rejected] = batch.rejected
    assert rejected.reason == "text is missing" and rejected.external_id == broken["id"]


async def test_reply_posts_the_message_to_the_comments_replies_edge(
        upstream: FakeGraph, connect: Connect) -> None:
    sent = await connect(send_replies=True).reply(
        ReplyTarget(comment(1)["id"], "deniz", PERMALINK, MEDIA), "Merhaba, DM atar mısınız?")
    [posted] = upstream.posted
    assert (posted["node"], posted["edge"]) == (comment(1)["id"], "replies")
    assert posted["form"] == {"message": "Merhaba, DM atar mısınız?"}
    assert sent.external_id == posted["id"] and sent.url == PERMALINK


async def test_reply_to_a_mention_goes_to_the_accounts_mentions_edge(
        upstream: FakeGraph, connect: Connect) -> None:
    await connect().reply(ReplyTarget("17955", "deniz", None, "mention:17800"), "Teşekkürler")
    [posted] = upstream.posted
    assert (posted["node"], posted["edge"]) == (ACCOUNT_ID, "mentions")
    assert posted["form"] == {"comment_id": "17955", "media_id": "17800",
                              "message": "Teşekkürler"}


@pytest.mark.parametrize("answer,status", [
    (graph_error(4, "Application request limit reached"), 429),
    (graph_error(190, "Session has expired"), 401),
    (graph_error(100, "Invalid parameter"), 400),
])
async def test_refused_replies_raise_reply_refused(upstream: FakeGraph, connect: Connect,
                                                  answer: Any, status: int) -> None:
    upstream.post_answers = [answer]
    with pytest.raises(ReplyRefused) as caught:
        await connect().reply(ReplyTarget(comment(1)["id"], "deniz"), "Merhaba")
    assert caught.value.status == status and TOKEN not in caught.value.message
    assert upstream.posted == []


# --- through the running service, on SQLite and PostgreSQL -------------------------------


async def start(aiohttp_client: Any, server: Any, db_url: str, clock: Any, enricher: Any,
                **overrides: Any) -> tuple[Any, Any]:
    config = make_config(db_url, sources=[source(server, **overrides)])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    client = await aiohttp_client(init_app(services, background=False))
    return client, services


def delivery(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"object": "instagram",
            "entry": [{"id": ACCOUNT_ID, "time": unix(35), "changes": list(changes)}]}


def comment_change(n: int, text: str = "Kargom nerede?", username: str = "deniz",
                   parent: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"from": {"id": "9001", "username": username},
                             "media": {"id": MEDIA, "media_product_type": "FEED"},
                             "id": comment(n)["id"], "text": text}
    if parent:
        value["parent_id"] = parent
    return {"field": "comments", "value": value}


async def stored(services: Any) -> list[Mention]:
    async with services.store.read() as session:
        return list(await session.scalars(select(Mention).order_by(Mention.id)))


async def test_a_signed_delivery_is_stored_and_a_poll_of_the_same_comment_is_not_again(
        aiohttp_client: Any, server: Any, upstream: FakeGraph, db_url: str, clock: Any,
        enricher: Any) -> None:
    client, services = await start(aiohttp_client, server, db_url, clock, enricher)
    raw, headers = signed(delivery(comment_change(1, "Siparişim gelmedi!")))
    response = await client.post(WEBHOOK, data=raw, headers=headers)
    assert response.status == 202
    assert (await response.json())["stored"] == 1

    upstream.edges[(MEDIA, "comments")] = [comment(1, "Siparişim gelmedi!", minute=35)]
    assert await services.coordinator.poll("insta") == "ok"
    [mention] = await stored(services)
    assert (mention.external_id, mention.text, mention.channel, mention.url) == (
        comment(1)["id"], "Siparişim gelmedi!", "instagram", PERMALINK)
    assert mention.created_at.astimezone(UTC) == datetime(2026, 11, 23, 6, 35, tzinfo=UTC)
    [api_mention] = await listed(client)
    assert api_mention["author"]["handle"] == "deniz"
    await services.store.close()
    await services.coordinator.close()


async def test_a_wrong_signature_gets_401_and_stores_nothing(
        aiohttp_client: Any, server: Any, db_url: str, clock: Any, enricher: Any) -> None:
    client, services = await start(aiohttp_client, server, db_url, clock, enricher)
    raw, headers = signed(delivery(comment_change(1)), secret="guessed")
    response = await client.post(WEBHOOK, data=raw, headers=headers)
    assert response.status == 401
    assert "X-Hub-Signature-256" in (await response.json())["error"]["message"]
    unsigned = await client.post(WEBHOOK, data=raw)
    assert unsigned.status == 401
    assert await stored(services) == []
    await services.store.close()
    await services.coordinator.close()


async def test_the_handshake_answers_the_challenge_only_with_the_right_token(
        aiohttp_client: Any, server: Any, db_url: str, clock: Any, enricher: Any) -> None:
    client, services = await start(aiohttp_client, server, db_url, clock, enricher)
    hub = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
           "hub.challenge": "1158201444"}
    response = await client.get(WEBHOOK, params=hub)
    assert response.status == 200 and response.content_type == "text/plain"
    assert await response.text() == "1158201444"
    for wrong in ({"hub.verify_token": "guess"}, {"hub.mode": "unsubscribe"}):
        refused = await client.get(WEBHOOK, params={**hub, **wrong})
        assert refused.status == 403 and "1158201444" not in await refused.text()
    assert (await client.get("/api/v1/webhooks/nope", params=hub)).status == 404
    await services.store.close()
    await services.coordinator.close()


async def test_a_mention_delivery_reads_the_comment_back_and_an_odd_change_is_rejected(
        aiohttp_client: Any, server: Any, upstream: FakeGraph, db_url: str, clock: Any,
        enricher: Any) -> None:
    client, services = await start(aiohttp_client, server, db_url, clock, enricher)
    upstream.nodes["17955"] = {"id": "17955", "text": "@acme ürün bozuk çıktı",
                               "username": "ayse", "timestamp": at(33),
                               "media": {"id": "17800", "permalink": "https://www.instagram."
                                                                     "com/p/Other/"}}
    raw, headers = signed(delivery(
        {"field": "mentions", "value": {"comment_id": "17955", "media_id": "17800"}},
        {"field": "mentions", "value": {"comment_id": "404404", "media_id": "17800"}}))
    response = await client.post(WEBHOOK, data=raw, headers=headers)
    assert response.status == 202 and (await response.json())["stored"] == 1
    [mention] = await stored(services)
    assert (mention.text, mention.url, mention.thread) == (
        "@acme ürün bozuk çıktı", "https://www.instagram.com/p/Other/", "mention:17800")
    async with services.store.read() as session:
        [rejected] = (await session.scalars(select(RejectedItem))).all()
    assert rejected.external_id == "404404" and "read back" in rejected.reason
    await services.store.close()
    await services.coordinator.close()


async def test_a_brand_reply_made_on_instagram_stops_the_clock(
        aiohttp_client: Any, server: Any, upstream: FakeGraph, db_url: str, clock: Any,
        enricher: Any) -> None:
    _, services = await start(aiohttp_client, server, db_url, clock, enricher)
    top = comment(1, "İadem hâlâ yatmadı", minute=30)
    upstream.edges[(MEDIA, "comments")] = [top]
    assert await services.coordinator.poll("insta") == "ok"
    upstream.edges[(MEDIA, "comments")] = [with_replies(top, comment(
        2, "@deniz hemen bakıyoruz", minute=45, username=BRAND_USERNAME, parent=top["id"]))]
    assert await services.coordinator.poll("insta") == "ok"
    customer = (await stored(services))[0]
    assert customer.status == "responded" and customer.response_external_id == comment(2)["id"]
    assert customer.first_response_at.astimezone(UTC) == datetime(2026, 11, 23, 6, 45,
                                                                  tzinfo=UTC)
    await services.store.close()
    await services.coordinator.close()


async def test_a_reply_sent_from_listener_is_posted_stored_and_stops_the_clock(
        aiohttp_client: Any, server: Any, upstream: FakeGraph, db_url: str, clock: Any,
        enricher: Any) -> None:
    client, services = await start(aiohttp_client, server, db_url, clock, enricher,
                                   send_replies=True)
    upstream.edges[(MEDIA, "comments")] = [comment(1, "Siparişim hâlâ gelmedi, rezalet!")]
    assert await services.coordinator.poll("insta") == "ok"
    [mention] = await listed(client)

    too_long = await client.post(f"/api/v1/mentions/{mention['id']}/reply",
                                 json={"text": "ü" * 2201, "send": True}, headers=AUTH)
    assert too_long.status == 422  # Instagram's 2,200 characters, checked before sending
    assert "2200" in (await too_long.json())["error"]["message"]
    assert upstream.calls("/replies", "POST") == []

    upstream.post_answers = [graph_error(4, "Application request limit reached")]
    refused = await client.post(f"/api/v1/mentions/{mention['id']}/reply",
                                json={"template": "apology", "send": True}, headers=AUTH)
    assert refused.status == 429
    [still] = await listed(client)
    assert still["status"] != "responded" and still["response"] is None

    response = await client.post(f"/api/v1/mentions/{mention['id']}/reply",
                                 json={"template": "apology", "send": True}, headers=AUTH)
    assert response.status == 200, await response.text()
    body = await response.json()
    [posted] = upstream.posted
    assert (posted["node"], posted["edge"]) == (comment(1)["id"], "replies")
    assert posted["form"]["message"] == body["draft"]
    assert body["mention"]["status"] == "responded"
    assert body["mention"]["response"]["external_id"] == posted["id"]
    async with services.store.read() as session:
        events = (await session.scalars(select(MentionEvent).where(
            MentionEvent.mention_id == mention["id"], MentionEvent.kind == "replied"))).all()
    assert [e.data["reply_id"] for e in events] == [posted["id"]]
    await services.store.close()
    await services.coordinator.close()
