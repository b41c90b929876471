"""The App Store source against a fake App Store Connect API on 127.0.0.1 that verifies
every ES256 token (signature, kid, issuer, audience, lifetime): customer reviews newest
first with `links.next`, the brand's responses, errors, and responses posted in place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from connectors.app_store import AppStoreConnector, AppStoreSource
from connectors.base import AuthFailed, RateLimited, ReplyRefused, ReplyTarget, SourceError
from listener.app import build_services, init_app, prepare_database
from listener.models import Mention, RejectedItem
from responders.limits import LENGTH_LIMITS
from tests.conftest import MONDAY_10, make_config
from tests.web.test_api import AUTH, listed

APP_ID = "1234567890"
ISSUER = "57246542-96fe-1a63-e053-0824d011072a"
KEY_ID = "2X9R4HXF34"
REVIEWS = f"/v1/apps/{APP_ID}/customerReviews"
APP_URL = f"https://apps.apple.com/app/id{APP_ID}?see-all=reviews"
NOW = MONDAY_10

Connect = Callable[..., AppStoreConnector]


def at(minute: int) -> str:
    """Apple's dates carry an offset (Pacific time)."""
    moment = datetime(2026, 11, 23, 6, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return moment.astimezone(timezone(timedelta(hours=-8))).isoformat()


def review(rid: str, body: str = "Uygulama sürekli çöküyor", rating: int = 2,
           minute: int = 10, title: str = "Çöküyor", nickname: str = "deniz_k",
           response: str | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {
        "type": "customerReviews", "id": rid,
        "attributes": {"rating": rating, "title": title, "body": body,
                       "reviewerNickname": nickname, "createdDate": at(minute),
                       "territory": "TUR"},
        "relationships": {"response": {"links": {"related": "..."}}},
        "links": {"self": f"https://api.appstoreconnect.apple.com/v1/customerReviews/{rid}"},
    }
    if response is not None:
        made["relationships"]["response"]["data"] = {"type": "customerReviewResponses",
                                                     "id": response}
    return made


def response_object(rid: str, text: str, minute: int, state: str = "PUBLISHED"
                    ) -> dict[str, Any]:
    return {"type": "customerReviewResponses", "id": rid,
            "attributes": {"responseBody": text, "lastModifiedDate": at(minute),
                           "state": state}}


class FakeAppStore:
    """Customer reviews newest first, `page_size` a page with a `links.next` cursor on
    Apple's public host; every request's token is verified like Apple does."""

    def __init__(self, public_key: Any) -> None:
        self.public_key = public_key
        self.reviews: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.page_size = 200
        self.answers: list[web.Response] = []
        self.reply_answers: list[web.Response] = []
        self.calls: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []
        self.expired: set[str] = set()  # tokens Apple no longer takes

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(REVIEWS, self._list)
        app.router.add_post("/v1/customerReviewResponses", self._post)
        return app

    def _verified(self, request: web.Request) -> dict[str, Any] | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"],
                                audience="appstoreconnect-v1", issuer=ISSUER,
                                options={"require": ["exp", "iat", "aud", "iss"]})
        except jwt.PyJWTError:
            return None
        if header.get("kid") != KEY_ID or header.get("typ") != "JWT":
            return None
        if claims["exp"] - claims["iat"] > 20 * 60 or token in self.expired:
            return None
        return claims

    def _refused(self) -> web.Response:
        return web.json_response({"errors": [{"status": "401", "code": "NOT_AUTHORIZED"}]},
                                 status=401)

    async def _list(self, request: web.Request) -> web.Response:
        self.calls.append({"query": dict(request.query),
                           "token": request.headers.get("Authorization")})
        if self.answers:
            return self.answers.pop(0)
        if self._verified(request) is None:
            return self._refused()
        start = int(request.query.get("cursor") or 0)
        size = min(self.page_size, int(request.query["limit"]))
        page = self.reviews[start:start + size]
        wanted = {r["relationships"]["response"].get("data", {}).get("id") for r in page}
        body: dict[str, Any] = {
            "data": page, "links": {"self": str(request.url)},
            "included": [r for r in self.responses if r["id"] in wanted]}
        if start + size < len(self.reviews):
            body["links"]["next"] = (f"https://api.appstoreconnect.apple.com{REVIEWS}"
                                     f"?cursor={start + size}&limit={size}&include=response"
                                     "&sort=-createdDate")
        return web.json_response(body)

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posted.append(body)
        if self.reply_answers:
            return self.reply_answers.pop(0)
        if self._verified(request) is None:
            return self._refused()
        return web.json_response({"data": {
            "type": "customerReviewResponses", "id": "00000044-resp-0001",
            "attributes": {"responseBody": body["data"]["attributes"]["responseBody"],
                           "state": "PENDING_PUBLISH"}}}, status=201)


def failure(status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"errors": [{"status": str(status), "code": "X"}]},
                             status=status, headers=headers)


@pytest.fixture(scope="module")
def private_key() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def key_file(tmp_path: Path, private_key: Any) -> str:
    path = tmp_path / f"AuthKey_{KEY_ID}.p8"
    path.write_bytes(private_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return str(path)


@pytest.fixture
def upstream(private_key: Any) -> FakeAppStore:
    return FakeAppStore(private_key.public_key())


@pytest.fixture
async def server(aiohttp_server: Any, upstream: FakeAppStore) -> Any:
    return await aiohttp_server(upstream.app())


def source(server: Any, key_file: str, **overrides: Any) -> dict[str, Any]:
    return {"id": "ios", "kind": "app_store", "app_id": APP_ID, "issuer_id": ISSUER,
            "key_id": KEY_ID, "private_key_file": key_file,
            "base_url": str(server.make_url("")), **overrides}


@pytest.fixture
async def connect(server: Any, key_file: str) -> AsyncIterator[Connect]:
    made: list[AppStoreConnector] = []

    def make(**overrides: Any) -> AppStoreConnector:
        made.append(AppStoreConnector(AppStoreSource.model_validate(
            source(server, key_file, **overrides))))
        return made[-1]

    yield make
    for connector in made:
        await connector.close()


async def test_reviews_become_mentions_with_title_body_stars_and_time(
        upstream: FakeAppStore, connect: Connect) -> None:
    upstream.reviews = [review("r2", "Love it", 5, minute=20, title="Great",
                               nickname="sam", response="resp-2"),
                        review("r1", minute=10)]
    upstream.responses = [response_object("resp-2", "Thank you Sam!", 30)]
    batch = await connect().fetch(None, NOW)

    by_id = {item.external_id: item for item in batch.items}
    assert set(by_id) == {"r1", "r2", "resp-2"}
    first = by_id["r1"]
    assert first.text == "Çöküyor\n\nUygulama sürekli çöküyor" and first.rating == 2
    assert first.author.handle == "deniz_k" and first.channel == "app_review"
    assert first.created_at == datetime(2026, 11, 23, 6, 10, tzinfo=UTC)
    assert first.url == APP_URL and first.thread == "r1"
    assert first.note == "App Store review: 2★, territory TUR"
    reply = by_id["resp-2"]
    assert reply.by_brand and reply.in_reply_to == "r2" and reply.text == "Thank you Sam!"
    assert reply.created_at == datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
    assert upstream.calls[0]["query"] == {"sort": "-createdDate", "limit": "200",
                                          "include": "response"}


async def test_pages_follow_links_next_and_the_next_poll_stops_at_the_cursor(
        upstream: FakeAppStore, connect: Connect) -> None:
    upstream.page_size = 2
    upstream.reviews = [review(f"r{n}", f"Yorum {n}", minute=30 - n) for n in range(5)]
    connector = connect()
    batch = await connector.fetch(None, NOW)
    assert [i.external_id for i in batch.items] == [f"r{n}" for n in range(5)]
    assert [c["query"].get("cursor") for c in upstream.calls] == [None, "2", "4"]

    upstream.reviews.insert(0, review("r9", "Yeni", minute=40))
    upstream.reviews.insert(1, review("r8", "Aynı an", minute=30))  # the cursor's instant
    upstream.calls.clear()
    again = await connector.fetch(batch.cursor, NOW)
    assert [i.external_id for i in again.items] == ["r9", "r8"]
    assert len(upstream.calls) == 2  # r1 on the second page is older: stop
    assert json.loads(again.cursor)["ids"] == ["r9"]


async def test_an_empty_app_stores_nothing(upstream: FakeAppStore, connect: Connect) -> None:
    batch = await connect().fetch(None, NOW)
    assert batch.items == [] and batch.cursor is None and batch.rejected == []


async def test_a_rate_limit_waits_then_the_next_poll_succeeds(
        upstream: FakeAppStore, connect: Connect) -> None:
    upstream.reviews = [review("r1")]
    upstream.answers = [failure(429, {"Retry-After": "90"})]
    connector = connect()
    with pytest.raises(RateLimited) as caught:
        await connector.fetch(None, NOW)
    assert caught.value.retry_after == 90
    assert [i.external_id for i in (await connector.fetch(None, NOW)).items] == ["r1"]


async def test_an_expired_token_is_made_anew_once_and_the_call_retried(
        upstream: FakeAppStore, connect: Connect, tmp_path: Path) -> None:
    upstream.reviews = [review("r1")]
    connector = connect()
    await connector.fetch(None, NOW)
    upstream.expired.add(upstream.calls[0]["token"].removeprefix("Bearer "))
    batch = await connector.fetch(None, NOW)
    assert [i.external_id for i in batch.items] == ["r1"]
    assert len(upstream.calls) == 3 and upstream.calls[1]["token"] == upstream.calls[0]["token"]
    assert upstream.calls[2]["token"] != upstream.calls[0]["token"]
    upstream.answers = [failure(401), failure(401)]
    with pytest.raises(AuthFailed, match="key_id"):
        await connector.fetch(None, NOW)

    other = tmp_path / "other.p8"
    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(AuthFailed):  # a key Apple does not know: refused twice
        await connect(private_key_file=str(other)).fetch(None, NOW)
    with pytest.raises(ValueError, match="private_key_file: no file at"):
        connect(private_key_file=str(tmp_path / "missing.p8"))  # said at start
    gone = tmp_path / "gone.p8"
    gone.write_text("not a key", encoding="utf-8")
    vanished = connect(private_key_file=str(gone))
    gone.unlink()
    with pytest.raises(AuthFailed, match="private_key_file"):
        await vanished.fetch(None, NOW)


async def test_server_errors_and_broken_bodies_are_source_errors(
        upstream: FakeAppStore, connect: Connect) -> None:
    connector = connect()
    upstream.answers = [failure(500)]
    with pytest.raises(SourceError, match="HTTP 500"):
        await connector.fetch(None, NOW)
    upstream.answers = [web.json_response({"errors": []})]
    with pytest.raises(SourceError, match="data list"):
        await connector.fetch(None, NOW)


async def test_a_malformed_review_is_rejected_and_its_neighbours_kept(
        upstream: FakeAppStore, connect: Connect) -> None:
    bad = review("r-bad", minute=15)
    bad["attributes"]["rating"] = 9
    upstream.reviews = [review("r2", minute=20), bad, review("r1", minute=5)]
    batch = await connect().fetch(None, NOW)
    assert [i.external_id for i in batch.items] == ["r2", "r1"]
    [rejected] = batch.rejected
    assert rejected.external_id == "r-bad" and "rating" in rejected.reason


def test_config_defaults_and_the_limit_beside_the_connector(key_file: str) -> None:
    config = AppStoreSource.model_validate({"id": "i", "kind": "app_store", "app_id": APP_ID,
                                            "issuer_id": ISSUER, "key_id": KEY_ID,
                                            "private_key_file": key_file})
    assert config.channel == "app_review" and config.interval == timedelta(hours=1)
    assert config.base_url == "https://api.appstoreconnect.apple.com"
    assert LENGTH_LIMITS["app_store"] == AppStoreConnector.reply_limit == 5970
    with pytest.raises(ValueError, match="app_id"):
        AppStoreSource.model_validate({"id": "i", "kind": "app_store", "app_id": "acme",
                                       "issuer_id": ISSUER, "key_id": KEY_ID,
                                       "private_key_file": key_file})


async def test_reply_posts_a_customer_review_response(upstream: FakeAppStore,
                                                      connect: Connect) -> None:
    connector = connect(send_replies=True)
    sent = await connector.reply(ReplyTarget("r1", "deniz_k", thread="r1"), "Merhaba Deniz")
    assert upstream.posted == [{"data": {
        "type": "customerReviewResponses", "attributes": {"responseBody": "Merhaba Deniz"},
        "relationships": {"review": {"data": {"type": "customerReviews", "id": "r1"}}}}}]
    assert sent.external_id == "00000044-resp-0001" and sent.url == APP_URL
    with pytest.raises(ReplyRefused) as caught:
        await connector.reply(ReplyTarget("r1", "deniz_k"), "x" * 5971)
    assert caught.value.status == 422 and len(upstream.posted) == 1
    upstream.reply_answers = [failure(409)]
    with pytest.raises(ReplyRefused) as caught:
        await connector.reply(ReplyTarget("r1", "deniz_k"), "Tekrar")
    assert caught.value.status == 409


async def test_end_to_end_stored_fields_a_reply_stops_the_clock_refusals_store_nothing(
        aiohttp_client: Any, server: Any, key_file: str, upstream: FakeAppStore, db_url: str,
        clock: Any, enricher: Any) -> None:
    bad = review("r-bad", minute=12)
    del bad["attributes"]["createdDate"]
    upstream.reviews = [review("r1", "Thanks, the design is lovely and the team is kind.",
                               1, minute=20, title="Thank you"), bad]
    config = make_config(db_url, sources=[source(server, key_file, send_replies=True)])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    client = await aiohttp_client(init_app(services, background=False))
    assert await services.coordinator.poll("ios") == "ok"

    async with services.store.read() as session:
        [stored] = await session.scalars(select(Mention))
        [rejected] = await session.scalars(select(RejectedItem))
    assert stored.text == "Thank you\n\nThanks, the design is lovely and the team is kind."
    assert stored.rating == 1 and stored.priority == "high" and stored.sentiment <= -0.3
    assert stored.channel == "app_review" and stored.url == APP_URL
    assert stored.created_at.astimezone(UTC) == datetime(2026, 11, 23, 6, 20, tzinfo=UTC)
    assert rejected.external_id == "r-bad" and "createdDate" in rejected.reason

    upstream.reply_answers = [failure(403)]
    refused = await client.post(f"/api/v1/mentions/{stored.id}/reply",
                                json={"text": "Merhaba", "send": True}, headers=AUTH)
    assert refused.status >= 400
    [still] = await listed(client)
    assert still["response"] is None and still["status"] != "responded"

    response = await client.post(f"/api/v1/mentions/{stored.id}/reply",
                                 json={"text": "Merhaba, bakıyoruz", "send": True},
                                 headers=AUTH)
    assert response.status == 200
    [answered] = await listed(client)
    assert answered["status"] == "responded" and answered["rating"] == 1
    assert answered["response"] == {"external_id": "00000044-resp-0001", "url": APP_URL}
    assert upstream.posted[-1]["data"]["attributes"]["responseBody"] == "Merhaba, bakıyoruz"
    await services.store.close()
    await services.coordinator.close()
