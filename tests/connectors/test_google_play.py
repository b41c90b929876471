"""The Google Play source against a fake Play Developer API on 127.0.0.1: a real
service-account key file, a token endpoint that checks the signed assertion, reviews
paged with tokens and read by last-modified time, edits, developer replies, quotas and
errors, and replies posted in place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from connectors.base import AuthFailed, RateLimited, ReplyRefused, ReplyTarget, SourceError
from connectors.google_play import SCOPE, GooglePlayConnector, GooglePlaySource
from listener.app import build_services, init_app, prepare_database
from listener.models import Mention, RejectedItem
from responders.limits import LENGTH_LIMITS
from tests.conftest import MONDAY_10, make_config
from tests.web.test_api import AUTH, listed

PACKAGE = "com.acme.app"
REVIEWS = f"/androidpublisher/v3/applications/{PACKAGE}/reviews"
NOW = MONDAY_10  # 07:00 UTC
EPOCH = int(datetime(2026, 11, 23, 6, 0, tzinfo=UTC).timestamp())

Connect = Callable[..., GooglePlayConnector]


def stamp(minute: int, nanos: int = 0) -> dict[str, Any]:
    """Google's Timestamp: seconds as a JSON string, as the API sends it."""
    return {"seconds": str(EPOCH + minute * 60), "nanos": nanos}


def review(rid: str, text: str = "Uygulama açılmıyor", stars: int = 2, minute: int = 10,
           reply: tuple[str, int] | None = None, **user: Any) -> dict[str, Any]:
    """A review shaped as the Play Developer API documents it."""
    made: dict[str, Any] = {
        "reviewId": rid, "authorName": "Ayşe Kaya",
        "comments": [{"userComment": {
            "text": f"\t{text}", "lastModified": stamp(minute), "starRating": stars,
            "reviewerLanguage": "tr_TR", "device": "a52q", "androidOsVersion": 33,
            "appVersionCode": 412, "appVersionName": "4.1.2", "thumbsUpCount": 3,
            "deviceMetadata": {"productName": "Galaxy A52", "manufacturer": "Samsung"},
            **user}}],
    }
    if reply is not None:
        made["comments"].append({"developerComment": {
            "text": reply[0], "lastModified": stamp(reply[1])}})
    return made


class FakePlay:
    """Play's token endpoint and reviews API. Reviews are served newest change first,
    `page_size` a page, with `tokenPagination.nextPageToken`; `answers` replaces the next
    API responses (errors), `expired` makes every token issued so far answer 401."""

    def __init__(self, public_key: Any) -> None:
        self.public_key = public_key
        self.reviews: list[dict[str, Any]] = []
        self.page_size = 100
        self.answers: list[web.Response] = []
        self.reply_answers: list[web.Response] = []
        self.tokens: list[str] = []
        self.expired: set[str] = set()
        self.calls: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.token_uri = ""
        self.refuse_tokens = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get(REVIEWS, self._list)
        app.router.add_post(REVIEWS + "/{rid}:reply", self._reply)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.refuse_tokens:  # a deleted key or a disabled service account
            return web.json_response({"error": "invalid_grant"}, status=400)
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        claims = jwt.decode(str(form["assertion"]), self.public_key, algorithms=["RS256"],
                            audience="https://oauth2.googleapis.com/token")
        assert claims["scope"] == SCOPE and claims["iss"].endswith(".iam.gserviceaccount.com")
        token = f"ya29.token-{len(self.tokens) + 1}"
        self.tokens.append(token)
        return web.json_response({"access_token": token, "expires_in": 3600,
                                  "token_type": "Bearer"})

    def _authorized(self, request: web.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return token in self.tokens and token not in self.expired

    async def _list(self, request: web.Request) -> web.Response:
        self.calls.append({"query": dict(request.query),
                           "auth": request.headers.get("Authorization")})
        if self.answers:
            return self.answers.pop(0)
        if not self._authorized(request):
            return web.json_response({"error": {"code": 401, "status": "UNAUTHENTICATED"}},
                                     status=401)
        start = int(request.query.get("token") or 0)
        size = min(self.page_size, int(request.query["maxResults"]))
        page = self.reviews[start:start + size]
        body: dict[str, Any] = {"reviews": page} if page else {}
        if start + size < len(self.reviews):
            body["tokenPagination"] = {"nextPageToken": str(start + size)}
        return web.json_response(body)

    async def _reply(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.replies.append({"review": request.match_info["rid"], "body": body})
        if self.reply_answers:
            return self.reply_answers.pop(0)
        if not self._authorized(request):
            return web.json_response({"error": {"code": 401}}, status=401)
        edited = stamp(65)  # 07:05 UTC, when the tests' clock sends it
        for made in self.reviews:
            if made["reviewId"] == request.match_info["rid"]:
                made["comments"][1:] = [{"developerComment": {
                    "text": body["replyText"], "lastModified": edited}}]
        return web.json_response({"result": {"replyText": body["replyText"],
                                             "lastEdited": edited}})


def error(status: int, reason: str = "", retry: str | None = None) -> web.Response:
    body = {"error": {"code": status, "message": "refused",
                      "errors": [{"reason": reason}] if reason else []}}
    headers = {"Retry-After": retry} if retry else None
    return web.json_response(body, status=status, headers=headers)


@pytest.fixture(scope="module")
def private_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def upstream(private_key: Any) -> FakePlay:
    return FakePlay(private_key.public_key())


@pytest.fixture
async def server(aiohttp_server: Any, upstream: FakePlay) -> Any:
    running = await aiohttp_server(upstream.app())
    upstream.token_uri = str(running.make_url("/token"))
    return running


@pytest.fixture
def key_file(tmp_path: Path, private_key: Any, server: Any, upstream: FakePlay) -> str:
    """A service-account key file as the Cloud console downloads it; its token_uri points
    at the fake."""
    pem = private_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    path = tmp_path / "play-key.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "acme-play", "private_key_id": "k1",
        "private_key": pem, "client_email": "listener@acme-play.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": upstream.token_uri}))
    return str(path)


def source(server: Any, key_file: str, **overrides: Any) -> dict[str, Any]:
    return {"id": "play", "kind": "google_play", "package": PACKAGE,
            "service_account_file": key_file, "base_url": str(server.make_url("")),
            "interval": "1h", **overrides}


@pytest.fixture
async def connect(server: Any, key_file: str) -> AsyncIterator[Connect]:
    made: list[GooglePlayConnector] = []

    def make(**overrides: Any) -> GooglePlayConnector:
        config = GooglePlaySource.model_validate(source(server, key_file, **overrides))
        made.append(GooglePlayConnector(config))
        return made[-1]

    yield make
    for connector in made:
        await connector.close()


async def test_reviews_become_mentions_with_stars_author_url_and_time(
        upstream: FakePlay, connect: Connect) -> None:
    upstream.reviews = [review("gp:AOqp-2", "Great app", stars=5, minute=20,
                               reply=("Thank you!", 25)),
                        review("gp:AOqp-1", minute=10)]
    batch = await connect().fetch(None, NOW)

    by_id = {item.external_id: item for item in batch.items}
    assert set(by_id) == {"gp:AOqp-1", "gp:AOqp-2", f"gp:AOqp-2:reply:{EPOCH + 1500}.000000000"}
    first = by_id["gp:AOqp-1"]
    assert first.text == "Uygulama açılmıyor" and first.rating == 2
    assert first.channel == "app_review" and first.lang == "tr"
    assert first.author.name == "Ayşe Kaya" and first.thread == "gp:AOqp-1"
    assert first.created_at == datetime(2026, 11, 23, 6, 10, tzinfo=UTC)
    assert first.url == ("https://play.google.com/store/apps/details?id=com.acme.app"
                         "&reviewId=gp%3AAOqp-1")
    assert first.note == "Google Play review: 2★, app 4.1.2, device Galaxy A52"
    reply = by_id[f"gp:AOqp-2:reply:{EPOCH + 1500}.000000000"]
    assert reply.by_brand and reply.thread == "gp:AOqp-2" and reply.text == "Thank you!"
    assert reply.created_at == datetime(2026, 11, 23, 6, 25, tzinfo=UTC)
    assert upstream.calls[0]["query"] == {"maxResults": "100"}
    assert upstream.calls[0]["auth"] == "Bearer ya29.token-1"


async def test_pages_are_walked_and_the_next_poll_returns_only_what_changed(
        upstream: FakePlay, connect: Connect) -> None:
    upstream.page_size = 2
    upstream.reviews = [review(f"gp:r{n}", f"Yorum {n}", minute=30 - n) for n in range(5)]
    connector = connect(translation_language="tr")
    batch = await connector.fetch(None, NOW)
    assert [i.external_id for i in batch.items] == [f"gp:r{n}" for n in range(5)]
    assert [c["query"].get("token") for c in upstream.calls] == [None, "2", "4"]
    assert upstream.calls[0]["query"]["translationLanguage"] == "tr"

    upstream.reviews.insert(0, review("gp:r9", "Yeni yorum", minute=40))
    upstream.calls.clear()
    again = await connector.fetch(batch.cursor, NOW)
    assert [i.external_id for i in again.items] == ["gp:r9"]
    assert len(upstream.calls) == 2  # the second page is all older than the cursor: stop
    assert json.loads(again.cursor) == {"seconds": EPOCH + 2400, "nanos": 0,
                                        "ids": ["gp:r9"]}


async def test_reviews_at_the_cursors_instant_are_told_apart_by_id(
        upstream: FakePlay, connect: Connect) -> None:
    upstream.reviews = [review("gp:a", "Bir", minute=10)]
    connector = connect()
    batch = await connector.fetch(None, NOW)
    upstream.reviews.insert(0, review("gp:b", "İki", minute=10))
    again = await connector.fetch(batch.cursor, NOW)
    assert [i.external_id for i in again.items] == ["gp:b"]
    assert json.loads(again.cursor)["ids"] == ["gp:a", "gp:b"]


async def test_an_empty_answer_stores_nothing_and_keeps_the_cursor(
        upstream: FakePlay, connect: Connect) -> None:
    connector = connect()
    batch = await connector.fetch(None, NOW)
    assert batch.items == [] and batch.cursor is None
    cursor = json.dumps({"seconds": EPOCH, "nanos": 5, "ids": ["gp:x"]})
    assert (await connector.fetch(cursor, NOW)).cursor == json.dumps(
        {"ids": ["gp:x"], "nanos": 5, "seconds": EPOCH}, sort_keys=True)


@pytest.mark.parametrize("refusal,wait", [(error(429, retry="120"), 120.0),
                                          (error(403, "quotaExceeded"), None)])
async def test_a_rate_limit_waits_then_the_next_poll_succeeds(
        upstream: FakePlay, connect: Connect, refusal: web.Response, wait: float | None) -> None:
    upstream.reviews = [review("gp:a")]
    upstream.answers = [refusal]
    connector = connect()
    with pytest.raises(RateLimited) as caught:
        await connector.fetch(None, NOW)
    if wait is not None:
        assert caught.value.retry_after == wait
    else:  # the quota frees when the hour's first call leaves the window
        assert caught.value.retry_after == 3600
    assert [i.external_id for i in (await connector.fetch(None, NOW)).items] == ["gp:a"]


async def test_an_expired_token_is_refreshed_once_and_the_call_retried(
        upstream: FakePlay, connect: Connect) -> None:
    upstream.reviews = [review("gp:a")]
    connector = connect()
    await connector.fetch(None, NOW)
    upstream.expired.add("ya29.token-1")
    batch = await connector.fetch(None, NOW)
    assert [i.external_id for i in batch.items] == ["gp:a"]
    assert [c["auth"] for c in upstream.calls] == ["Bearer ya29.token-1"] * 2 + [
        "Bearer ya29.token-2"]
    upstream.answers = [error(401), error(401)]
    with pytest.raises(AuthFailed, match="service_account_file"):
        await connector.fetch(None, NOW)
    assert len(upstream.tokens) == 3  # one refresh per refused call, never a loop


async def test_a_key_file_google_refuses_or_cannot_be_read_fails_auth(
        upstream: FakePlay, connect: Connect, tmp_path: Path) -> None:
    upstream.refuse_tokens = True
    with pytest.raises(AuthFailed, match="check service_account_file"):
        await connect().fetch(None, NOW)
    with pytest.raises(ValueError, match="service_account_file: no file at '/nonexistent"):
        connect(service_account_file="/nonexistent/key.json")  # said at start
    gone = tmp_path / "gone.json"
    gone.write_text("{}", encoding="utf-8")
    vanished = connect(service_account_file=str(gone))
    gone.unlink()
    with pytest.raises(AuthFailed, match="check service_account_file"):
        await vanished.fetch(None, NOW)
    assert upstream.calls == []  # no API call without a token


async def test_server_errors_and_broken_bodies_are_source_errors(
        upstream: FakePlay, connect: Connect) -> None:
    connector = connect()
    upstream.answers = [error(503)]
    with pytest.raises(SourceError, match="HTTP 503"):
        await connector.fetch(None, NOW)
    upstream.answers = [web.Response(text="<html>busy</html>", content_type="text/html")]
    with pytest.raises(SourceError, match="expected JSON"):
        await connector.fetch(None, NOW)


async def test_a_malformed_review_is_rejected_and_its_neighbours_kept(
        upstream: FakePlay, connect: Connect) -> None:
    no_stars = review("gp:bad", minute=15)
    del no_stars["comments"][0]["userComment"]["starRating"]
    upstream.reviews = [review("gp:a", minute=20), no_stars, {"reviewId": "gp:empty",
                                                               "comments": [{}]},
                        review("gp:b", minute=5)]
    batch = await connect().fetch(None, NOW)
    assert [i.external_id for i in batch.items] == ["gp:a", "gp:b"]
    assert [(r.external_id, "starRating" in r.reason or "userComment" in r.reason)
            for r in batch.rejected] == [("gp:bad", True), ("gp:empty", True)]


async def test_the_hourly_read_quota_stops_paging_and_stretches_the_interval(
        upstream: FakePlay, connect: Connect) -> None:
    upstream.page_size = 1
    upstream.reviews = [review(f"gp:r{n}", f"Yorum {n}", minute=30 - n) for n in range(3)]
    connector = connect(reads_per_hour=2, interval="60s")
    batch = await connector.fetch(None, NOW)
    assert len(upstream.calls) == 2 and len(batch.items) == 2
    assert batch.cursor is None  # cut short: the next poll reads the gap again
    assert batch.not_before == NOW + timedelta(hours=1)
    assert connector.interval(NOW) == timedelta(hours=1)
    budget = connector.status(NOW)["read_budget"]
    assert (budget["used"], budget["remaining"]) == (2, 0)


def test_config_defaults_and_the_limit_beside_the_connector() -> None:
    config = GooglePlaySource.model_validate({"id": "p", "kind": "google_play",
                                              "package": PACKAGE,
                                              "service_account_file": "/k.json"})
    assert config.channel == "app_review" and config.interval == timedelta(hours=1)
    assert config.base_url == "https://androidpublisher.googleapis.com"
    assert LENGTH_LIMITS["google_play"] == GooglePlayConnector.reply_limit == 350
    with pytest.raises(ValueError, match="package"):
        GooglePlaySource.model_validate({"id": "p", "kind": "google_play",
                                         "package": "not a package",
                                         "service_account_file": "/k.json"})


async def test_reply_posts_reply_text_and_returns_the_reply_id(
        upstream: FakePlay, connect: Connect) -> None:
    upstream.reviews = [review("gp:a")]
    connector = connect(send_replies=True)
    sent = await connector.reply(ReplyTarget("gp:a", "play:gp:a", thread="gp:a"),
                                 "Merhaba, yardımcı olalım")
    assert upstream.replies == [{"review": "gp:a",
                                 "body": {"replyText": "Merhaba, yardımcı olalım"}}]
    assert sent.external_id == f"gp:a:reply:{EPOCH + 3900}.000000000"
    with pytest.raises(ReplyRefused) as caught:
        await connector.reply(ReplyTarget("gp:a", "x", thread="gp:a"), "x" * 351)
    assert caught.value.status == 422 and "350" in caught.value.message
    assert len(upstream.replies) == 1  # refused before sending
    upstream.reply_answers = [error(403, "forbidden")]
    with pytest.raises(ReplyRefused) as caught:
        await connector.reply(ReplyTarget(f"gp:a:{EPOCH}.000000000", "x"), "Tekrar")
    assert caught.value.status == 403 and upstream.replies[-1]["review"] == "gp:a"


async def start(aiohttp_client: Any, server: Any, key_file: str, db_url: str, clock: Any,
                enricher: Any) -> tuple[Any, Any]:
    config = make_config(db_url, sources=[source(server, key_file, send_replies=True)])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    client = await aiohttp_client(init_app(services, background=False))
    return client, services


async def rows(services: Any) -> dict[str, Mention]:
    async with services.store.read() as session:
        return {m.external_id: m for m in await session.scalars(select(Mention))}


async def test_end_to_end_a_polite_one_star_review_is_a_high_priority_complaint(
        aiohttp_client: Any, server: Any, key_file: str, upstream: FakePlay, db_url: str,
        clock: Any, enricher: Any) -> None:
    bad = review("gp:bad", minute=12)
    del bad["comments"][0]["userComment"]["lastModified"]
    upstream.reviews = [review("gp:polite", "Thank you, lovely colours, nice team.",
                               stars=1, minute=20, reviewerLanguage="en"), bad,
                        review("gp:fan", "Uygulama", stars=5, minute=5)]
    client, services = await start(aiohttp_client, server, key_file, db_url, clock, enricher)
    assert await services.coordinator.poll("play") == "ok"
    stored = await rows(services)
    polite, fan = stored["gp:polite"], stored["gp:fan"]
    assert polite.rating == 1 and polite.sentiment <= -0.3 and polite.priority == "high"
    assert polite.text == "Thank you, lovely colours, nice team." and polite.lang == "en"
    assert polite.channel == "app_review" and polite.deadline_at is not None
    assert polite.created_at.astimezone(UTC) == datetime(2026, 11, 23, 6, 20, tzinfo=UTC)
    assert fan.rating == 5 and fan.sentiment >= 0.3
    async with services.store.read() as session:
        [rejected] = await session.scalars(select(RejectedItem))
    assert rejected.external_id == "gp:bad" and "lastModified" in rejected.reason
    [shown] = [m for m in await listed(client) if m["external_id"] == "gp:polite"]
    assert shown["rating"] == 1
    await services.store.close()
    await services.coordinator.close()


async def test_end_to_end_reply_stops_the_clock_and_an_edit_reopens_it_as_a_follow_up(
        aiohttp_client: Any, server: Any, key_file: str, upstream: FakePlay, db_url: str,
        clock: Any, enricher: Any) -> None:
    upstream.reviews = [review("gp:a", "Giriş yapamıyorum", stars=2, minute=10)]
    client, services = await start(aiohttp_client, server, key_file, db_url, clock, enricher)
    assert await services.coordinator.poll("play") == "ok"
    # edited before any answer: still the one mention
    upstream.reviews = [review("gp:a", "Giriş yapamıyorum, SMS gelmiyor", stars=2, minute=14)]
    clock.advance(timedelta(minutes=2))
    assert await services.coordinator.poll("play") == "ok"
    [first] = (await rows(services)).values()

    too_long = await client.post(f"/api/v1/mentions/{first.id}/reply",
                                 json={"text": "x" * 351, "send": True}, headers=AUTH)
    assert too_long.status == 422 and upstream.replies == []
    assert "351 characters long and app_review (google_play) allows 350" in \
        (await too_long.json())["error"]["message"]
    upstream.reply_answers = [error(403, "forbidden")]
    refused = await client.post(f"/api/v1/mentions/{first.id}/reply",
                                json={"text": "Merhaba, bakıyoruz", "send": True},
                                headers=AUTH)
    assert refused.status in (403, 502) and len(upstream.replies) == 1
    assert (await rows(services))["gp:a"].first_response_at is None

    response = await client.post(f"/api/v1/mentions/{first.id}/reply",
                                 json={"text": "Merhaba, bakıyoruz", "send": True},
                                 headers=AUTH)
    assert response.status == 200
    assert upstream.replies[-1]["body"] == {"replyText": "Merhaba, bakıyoruz"}
    answered = (await rows(services))["gp:a"]
    assert answered.status == "responded"
    assert answered.response_external_id == f"gp:a:reply:{EPOCH + 3900}.000000000"

    upstream.reviews[0]["comments"][0]["userComment"].update(
        text="Hâlâ giriş yapamıyorum", lastModified=stamp(70))
    clock.advance(timedelta(minutes=10))
    assert await services.coordinator.poll("play") == "ok"
    stored = await rows(services)
    customer = [m for m in stored.values() if m.status != "ignored"]
    assert sorted(m.external_id for m in customer) == ["gp:a", f"gp:a:{EPOCH + 4200}.000000000"]
    edit = stored[f"gp:a:{EPOCH + 4200}.000000000"]
    assert edit.follow_up_of == answered.id and edit.thread == "gp:a"
    assert edit.status in ("new", "assigned") and edit.deadline_at is not None
    assert edit.text == "Hâlâ giriş yapamıyorum" and edit.rating == 2
    assert stored["gp:a"].status == "responded"
    await services.store.close()
    await services.coordinator.close()
