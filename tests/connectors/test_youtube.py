"""The YouTube source against a fake YouTube Data API v3 and OAuth token endpoint served on
127.0.0.1: comment threads newest first with page tokens, the daily quota, errors, the
brand's own replies, and replies posted with a refreshed access token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from connectors.base import AuthFailed, RateLimited, ReplyRefused, ReplyTarget, SourceError
from connectors.youtube import YoutubeConnector, YoutubeSource, quota_reset
from listener.app import build_services, init_app, prepare_database
from listener.models import Mention, MentionEvent, RejectedItem
from tests.conftest import MONDAY_10, make_config
from tests.web.test_api import AUTH

CHANNEL = "UCacme0000000000000000AA"  # the brand's channel
ALI = "UCali0000000000000000001"
VEYSEL = "UCveysel0000000000000002"
API_KEY = "AIza-test-key-s3cret"
CLIENT_ID, CLIENT_SECRET, REFRESH = "acme.apps.googleusercontent.com", "GOCSPX-s3cret", "1//r3fresh"
NOW = MONDAY_10.astimezone(UTC)  # 07:00 UTC: 23:00 in California, an hour before the reset
RESET = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

Connect = Callable[..., YoutubeConnector]


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def comment(comment_id: str, text: str, when: datetime, author: str = ALI,
            name: str = "@ali", video: str = "vid00000001", html: str | None = None,
            parent: str | None = None) -> dict[str, Any]:
    """A `youtube#comment` as an API key sees it (`textOriginal` only with `html` None)."""
    snippet: dict[str, Any] = {
        "channelId": CHANNEL, "videoId": video,
        "textDisplay": html if html is not None else text,
        "authorDisplayName": name,
        "authorProfileImageUrl": "https://yt3.ggpht.com/a.jpg",
        "authorChannelUrl": f"http://www.youtube.com/{name}",
        "authorChannelId": {"value": author},
        "canRate": True, "viewerRating": "none", "likeCount": 0,
        "publishedAt": stamp(when), "updatedAt": stamp(when),
    }
    if html is None:
        snippet["textOriginal"] = text
    if parent:
        snippet["parentId"] = parent
    return {"kind": "youtube#comment", "etag": "e", "id": comment_id, "snippet": snippet}


def thread(thread_id: str, text: str, when: datetime, replies: list[dict[str, Any]] = (),
           total: int | None = None, **extra: Any) -> dict[str, Any]:
    top = comment(thread_id, text, when, **extra)
    made: dict[str, Any] = {
        "kind": "youtube#commentThread", "etag": "e", "id": thread_id,
        "snippet": {"channelId": CHANNEL, "videoId": top["snippet"]["videoId"],
                    "topLevelComment": top, "canReply": True, "isPublic": True,
                    "totalReplyCount": len(replies) if total is None else total},
    }
    if replies:
        made["replies"] = {"comments": list(replies)}
    return made


def reply(thread_id: str, n: int, text: str, when: datetime, **extra: Any) -> dict[str, Any]:
    return comment(f"{thread_id}.r{n}", text, when, parent=thread_id, **extra)


def google_error(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "errors": [
        {"message": message, "domain": "youtube.quota", "reason": reason}]}}, status=status)


class FakeYouTube:
    """`commentThreads` newest first in pages of `maxResults` (tokens are offsets),
    `comments?parentId=`, `comments.insert` for valid access tokens, and Google's token
    endpoint for the refresh-token grant. `answers` replace the next responses of a path."""

    def __init__(self) -> None:
        self.threads: list[dict[str, Any]] = []
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, list[web.Response]] = {}
        self.tokens: set[str] = set()
        self.issued = 0
        self.posted: list[dict[str, Any]] = []
        self.failing_tokens: set[str] = set()  # the page after this token fails once

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/youtube/v3/commentThreads", self._threads)
        app.router.add_get("/youtube/v3/comments", self._comments)
        app.router.add_post("/youtube/v3/comments", self._insert)
        app.router.add_post("/token", self._token)
        return app

    def calls(self, path: str, method: str = "GET") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and r["method"] == method]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        form = dict(await request.post()) if request.content_type.endswith("urlencoded") \
            else None
        body = await request.json() if request.content_type == "application/json" else None
        self.requests.append({"method": request.method, "path": request.path,
                              "query": dict(request.query), "form": form, "json": body,
                              "headers": dict(request.headers)})
        queued = self.answers.get(f"{request.method} {request.path}")
        if queued:
            return queued.pop(0)
        return await handler(request)

    def _keyed(self, request: web.Request) -> web.Response | None:
        if request.query.get("key") != API_KEY:
            return google_error(400, "keyInvalid", "API key not valid. Please pass a valid "
                                                   "API key.")
        return None

    @staticmethod
    def _page(request: web.Request, rows: list[dict[str, Any]], kind: str) -> web.Response:
        size = int(request.query.get("maxResults", 20))
        start = int(request.query.get("pageToken", "0"))
        page = rows[start:start + size]
        body: dict[str, Any] = {"kind": kind, "etag": "e", "items": page,
                                "pageInfo": {"totalResults": len(page),
                                             "resultsPerPage": size}}
        if start + size < len(rows):
            body["nextPageToken"] = str(start + size)
        return web.json_response(body)

    async def _threads(self, request: web.Request) -> web.Response:
        if (refused := self._keyed(request)) is not None:
            return refused
        if request.query.get("allThreadsRelatedToChannelId") != CHANNEL:
            return google_error(404, "channelNotFound", "The channel could not be found.")
        if request.query.get("pageToken") in self.failing_tokens:
            self.failing_tokens.discard(request.query["pageToken"])
            return web.Response(status=500, text="backend error")
        rows = sorted(self.threads, reverse=True, key=lambda t: t["snippet"][
            "topLevelComment"]["snippet"]["updatedAt"])  # publishedAt, unless broken
        return self._page(request, rows, "youtube#commentThreadListResponse")

    async def _comments(self, request: web.Request) -> web.Response:
        if (refused := self._keyed(request)) is not None:
            return refused
        rows = self.replies.get(request.query["parentId"], [])
        return self._page(request, rows, "youtube#commentListResponse")

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (form.get("grant_type"), form.get("client_id"), form.get("client_secret"),
                form.get("refresh_token")) != ("refresh_token", CLIENT_ID, CLIENT_SECRET,
                                               REFRESH):
            return web.json_response({"error": "invalid_grant",
                                      "error_description": "Bad Request"}, status=400)
        self.issued += 1
        token = f"ya29.access-{self.issued}"
        self.tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 3599,
                                  "scope": "https://www.googleapis.com/auth/youtube.force-ssl",
                                  "token_type": "Bearer"})

    async def _insert(self, request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.tokens:
            return web.json_response({"error": {"code": 401, "message": "Request had invalid "
                                                "authentication credentials.", "status":
                                                "UNAUTHENTICATED"}}, status=401)
        body = await request.json()
        self.posted.append(body)
        parent = body["snippet"]["parentId"]
        made = comment(f"{parent}.brand{len(self.posted)}", body["snippet"]["textOriginal"],
                       at(7, 1), author=CHANNEL, name="@acme")
        del made["snippet"]["videoId"]  # comments.insert answers without it for replies
        return web.json_response(made)


@pytest.fixture
def fake() -> FakeYouTube:
    return FakeYouTube()


@pytest.fixture
async def server(aiohttp_server: Any, fake: FakeYouTube) -> Any:
    return await aiohttp_server(fake.app())


def source(server: Any, **overrides: Any) -> dict[str, Any]:
    base = str(server.make_url("")).rstrip("/")
    return {"id": "yt", "kind": "youtube", "channel_id": CHANNEL, "api_key": API_KEY,
            "base_url": base, "token_url": f"{base}/token", "interval": "60s",
            **overrides}


def reply_keys() -> dict[str, Any]:
    return {"send_replies": True, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH}


@pytest.fixture
async def connect(server: Any) -> AsyncIterator[Connect]:
    made: list[YoutubeConnector] = []

    def make(**overrides: Any) -> YoutubeConnector:
        made.append(YoutubeConnector(YoutubeSource.model_validate(source(server, **overrides))))
        return made[-1]

    yield make
    for connector in made:
        await connector.close()


# --- reading ---------------------------------------------------------------------------------


async def test_threads_become_mentions_and_the_channels_replies_the_brands(
        fake: FakeYouTube, connect: Connect) -> None:
    fake.threads = [
        thread("UgyAAA", "Siparişim 5 gündür gelmedi 😡", at(6, 30), replies=[
            reply("UgyAAA", 1, "Aynısı bende de oldu", at(6, 40), author=VEYSEL,
                  name="@veysel"),
            reply("UgyAAA", 2, "@ali merhaba, DM'den yazar mısınız?", at(6, 50),
                  author=CHANNEL, name="@acme"),
        ]),
        thread("UgyBBB", "", at(6, 20), html="Kargo &amp; iade <b>rezalet</b><br>yardım?",
               video="vid00000002", author=VEYSEL, name="@veysel"),
    ]
    batch = await connect().fetch(None, NOW)
    items = {item.external_id: item for item in batch.items}
    assert [i.external_id for i in batch.items] == ["UgyBBB", "UgyAAA", "UgyAAA.r1",
                                                   "UgyAAA.r2"]  # oldest first
    top = items["UgyAAA"]
    assert (top.text, top.channel, top.thread, top.in_reply_to, top.by_brand) == (
        "Siparişim 5 gündür gelmedi 😡", "youtube", "UgyAAA", None, False)
    assert (top.author.handle, top.author.name) == (ALI, "@ali")
    assert top.created_at == at(6, 30)
    assert top.url == "https://www.youtube.com/watch?v=vid00000001&lc=UgyAAA"
    other, brand = items["UgyAAA.r1"], items["UgyAAA.r2"]
    assert (other.in_reply_to, other.thread, other.by_brand) == ("UgyAAA", "UgyAAA", False)
    assert other.url == "https://www.youtube.com/watch?v=vid00000001&lc=UgyAAA.r1"
    assert (brand.in_reply_to, brand.by_brand, brand.author.handle) == ("UgyAAA", True, CHANNEL)
    assert items["UgyBBB"].text == "Kargo & iade rezalet\nyardım?"
    [call] = fake.calls("/youtube/v3/commentThreads")
    assert call["query"] == {"part": "snippet,replies", "allThreadsRelatedToChannelId": CHANNEL,
                             "order": "time", "maxResults": "100", "key": API_KEY}


async def test_pages_are_followed_and_the_next_poll_stops_at_what_it_has(
        fake: FakeYouTube, connect: Connect) -> None:
    start = at(4, 0)
    fake.threads = [thread(f"Ugy{n:03d}", f"yorum {n}", start + timedelta(seconds=30 * n))
                    for n in range(150)]
    connector = connect(replies_lookback="0s", backfill="1d")
    first = await connector.fetch(None, NOW)
    assert len(first.items) == 150 and not first.rejected
    tokens = [c["query"].get("pageToken") for c in fake.calls("/youtube/v3/commentThreads")]
    assert tokens == [None, "100"]

    fake.threads += [thread("UgyNEW1", "yeni", at(6, 55)), thread("UgyNEW2", "daha yeni",
                                                                   at(6, 58))]
    second = await connector.fetch(first.cursor, NOW + timedelta(minutes=1))
    assert [i.external_id for i in second.items] == ["UgyNEW1", "UgyNEW2"]
    assert len(fake.calls("/youtube/v3/commentThreads")) == 3  # one page: it met the cursor


async def test_an_empty_channel_answers_an_empty_page(fake: FakeYouTube,
                                                     connect: Connect) -> None:
    connector = connect()
    first = await connector.fetch(None, NOW)
    again = await connector.fetch(first.cursor, NOW + timedelta(minutes=1))
    assert first.items == again.items == [] and first.rejected == []
    assert connector.status(NOW)["read_budget"]["remaining"] == 10_000 - 2


async def test_a_new_reply_under_a_thread_already_read_comes_back_once(
        fake: FakeYouTube, connect: Connect) -> None:
    fake.threads = [thread("UgyOLD", "Fatura hatalı", at(3, 0))]
    connector = connect()
    first = await connector.fetch(None, NOW)
    assert [i.external_id for i in first.items] == ["UgyOLD"]
    fake.threads = [thread("UgyOLD", "Fatura hatalı", at(3, 0), replies=[
        reply("UgyOLD", 1, "Kontrol ediyoruz", at(6, 59), author=CHANNEL, name="@acme")])]
    second = await connector.fetch(first.cursor, NOW)
    assert [(i.external_id, i.by_brand, i.in_reply_to) for i in second.items] == [
        ("UgyOLD.r1", True, "UgyOLD")]
    third = await connector.fetch(second.cursor, NOW)
    assert third.items == []


async def test_the_lookback_never_reaches_below_the_first_polls_backfill(
        fake: FakeYouTube, connect: Connect) -> None:
    fake.threads = [thread("UgyNEW", "yeni", at(6, 30)), thread("UgyOLD", "eski", at(5, 0))]
    connector = connect(backfill="1h", replies_lookback="1d")
    first = await connector.fetch(None, NOW)
    assert [i.external_id for i in first.items] == ["UgyNEW"]
    second = await connector.fetch(first.cursor, NOW + timedelta(minutes=10))
    assert second.items == []  # 05:00 is older than the backfill: not a new comment


async def test_a_thread_with_more_replies_than_listed_has_them_all_read_once(
        fake: FakeYouTube, connect: Connect) -> None:
    everyone = [reply("UgyBIG", n, f"cevap {n}", at(6, n)) for n in range(1, 8)]
    fake.threads = [thread("UgyBIG", "Uygulama açılmıyor", at(5, 0), replies=everyone[-5:],
                           total=7)]
    fake.replies["UgyBIG"] = everyone
    connector = connect()
    first = await connector.fetch(None, NOW)
    assert [i.external_id for i in first.items] == ["UgyBIG"] + [f"UgyBIG.r{n}"
                                                                 for n in range(1, 8)]
    assert fake.calls("/youtube/v3/comments")[0]["query"]["parentId"] == "UgyBIG"
    second = await connector.fetch(first.cursor, NOW)
    assert second.items == [] and len(fake.calls("/youtube/v3/comments")) == 1


async def test_malformed_items_are_rejected_once_and_their_neighbours_kept(
        fake: FakeYouTube, connect: Connect) -> None:
    undated = thread("UgyBAD", "tarih yok", at(6, 10))
    del undated["snippet"]["topLevelComment"]["snippet"]["publishedAt"]
    textless = reply("UgyOK1", 1, "x", at(6, 30))
    del textless["snippet"]["textOriginal"], textless["snippet"]["textDisplay"]
    fake.threads = [thread("UgyOK1", "İade ne zaman?", at(6, 20), replies=[
        textless, reply("UgyOK1", 2, "Bende de aynı", at(6, 35))]),
        undated, thread("UgyOK2", "Teşekkürler", at(6, 0))]
    connector = connect()
    first = await connector.fetch(None, NOW)
    assert [i.external_id for i in first.items] == ["UgyOK2", "UgyOK1", "UgyOK1.r2"]
    assert sorted((r.external_id, r.reason) for r in first.rejected) == [
        ("UgyBAD", "publishedAt is missing"),
        ("UgyOK1.r1", "textOriginal and textDisplay are both missing")]
    second = await connector.fetch(first.cursor, NOW)
    assert second.items == [] and second.rejected == []  # re-read window, not re-recorded


# --- the daily quota -----------------------------------------------------------------------


def test_the_quota_day_ends_at_midnight_pacific_summer_and_winter() -> None:
    assert quota_reset(NOW) == RESET  # PST: UTC-8
    assert quota_reset(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == datetime(
        2026, 7, 2, 7, 0, tzinfo=UTC)  # PDT: UTC-7
    assert quota_reset(RESET) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


async def test_the_interval_stretches_as_units_run_down_and_status_shows_them(
        fake: FakeYouTube, connect: Connect) -> None:
    fake.threads = [thread("UgyAAA", "merhaba", at(6, 30))]
    connector = connect(daily_units=10_000)
    assert connector.status(NOW)["read_budget"] == {
        "daily_units": 10_000, "used": None, "remaining": None,
        "resets_at": RESET.isoformat()}
    fresh = await connector.fetch(None, NOW)
    assert connector.interval(NOW) == timedelta(seconds=60)  # plenty left: the configured one
    assert connector.status(NOW)["read_budget"]["remaining"] == 9_999

    nearly_spent = json.loads(fresh.cursor) | {"units": 9_990, "reads": 90, "polls": 90}
    await connector.fetch(json.dumps(nearly_spent), NOW)
    # 9 units left for the hour to midnight Pacific, one unit a poll: one poll per 400 s
    assert connector.status(NOW)["read_budget"]["remaining"] == 9
    assert connector.interval(NOW) == timedelta(seconds=400)

    calls = len(fake.calls("/youtube/v3/commentThreads"))
    spent = json.loads(fresh.cursor) | {"units": 10_000}
    batch = await connector.fetch(json.dumps(spent), NOW)
    assert batch.not_before == RESET and batch.items == []
    assert len(fake.calls("/youtube/v3/commentThreads")) == calls  # YouTube not called
    assert connector.interval(NOW) == RESET - NOW

    tomorrow = RESET + timedelta(minutes=1)
    await connector.fetch(batch.cursor, tomorrow)  # a new Pacific day: a full budget again
    assert connector.status(tomorrow)["read_budget"]["remaining"] == 9_999


async def test_a_spent_quota_waits_for_the_reset_or_its_retry_after(
        fake: FakeYouTube, connect: Connect) -> None:
    connector = connect()
    fake.answers["GET /youtube/v3/commentThreads"] = [
        google_error(403, "quotaExceeded", "The request cannot be completed because you "
                                           "have exceeded your quota.")]
    with pytest.raises(RateLimited) as spent:
        await connector.fetch(None, NOW)
    assert spent.value.retry_after == 3600 and "quota" in str(spent.value)
    assert connector.status(NOW)["read_budget"]["remaining"] == 0

    limited = google_error(403, "rateLimitExceeded", "Too many requests")
    limited.headers["Retry-After"] = "120"
    fake.answers["GET /youtube/v3/commentThreads"] = [limited]
    with pytest.raises(RateLimited) as slow:
        await connect().fetch(None, NOW)
    assert slow.value.retry_after == 120


@pytest.mark.parametrize("answer", [
    lambda: google_error(403, "forbidden", "The caller does not have permission"),
    lambda: google_error(401, "unauthorized", "Login Required"),
], ids=["403", "401"])
async def test_refused_credentials_name_the_key_never_its_value(
        fake: FakeYouTube, connect: Connect, answer: Any) -> None:
    fake.answers["GET /youtube/v3/commentThreads"] = [answer()]
    with pytest.raises(AuthFailed) as refused:
        await connect().fetch(None, NOW)
    assert "api_key" in str(refused.value) and API_KEY not in str(refused.value)


async def test_a_wrong_key_is_an_auth_failure(connect: Connect) -> None:
    with pytest.raises(AuthFailed, match="API key not valid") as refused:
        await connect(api_key="wrong").fetch(None, NOW)
    assert "wrong" not in str(refused.value)


async def test_server_errors_and_broken_bodies_are_source_errors_without_the_key(
        fake: FakeYouTube, connect: Connect) -> None:
    fake.answers["GET /youtube/v3/commentThreads"] = [
        web.Response(status=503, text="backend error"),
        web.Response(status=200, text="<html>proxy</html>", content_type="text/html")]
    for expected in ("HTTP 503", "expected JSON"):
        with pytest.raises(SourceError) as failed:
            await connect().fetch(None, NOW)
        assert expected in str(failed.value) and API_KEY not in str(failed.value)
        assert not isinstance(failed.value, AuthFailed | RateLimited)


async def test_a_failure_on_a_later_page_keeps_the_first_and_goes_on_from_its_token(
        fake: FakeYouTube, connect: Connect) -> None:
    fake.threads = [thread(f"Ugy{n:03d}", f"yorum {n}", at(5) + timedelta(seconds=30 * n))
                    for n in range(150)]
    connector = connect()
    fake.failing_tokens = {"100"}
    first = await connector.fetch(None, NOW)
    assert len(first.items) == 100
    second = await connector.fetch(first.cursor, NOW)
    assert len(second.items) == 50
    assert fake.calls("/youtube/v3/commentThreads")[2]["query"]["pageToken"] == "100"


# --- replying --------------------------------------------------------------------------------


async def test_a_reply_refreshes_the_token_once_and_reuses_it(fake: FakeYouTube,
                                                              connect: Connect) -> None:
    connector = connect(**reply_keys())
    target = ReplyTarget("UgyAAA.r1", ALI, "https://www.youtube.com/watch?v=vid00000001&lc=U",
                         thread="UgyAAA")
    sent = await connector.reply(target, "Merhaba, DM'den yazar mısınız?")
    assert sent.external_id == "UgyAAA.brand1"
    assert sent.url == "https://www.youtube.com/watch?v=vid00000001&lc=UgyAAA.brand1"
    assert fake.posted == [{"snippet": {"parentId": "UgyAAA",
                                        "textOriginal": "Merhaba, DM'den yazar mısınız?"}}]
    [grant] = fake.calls("/token", "POST")
    assert grant["form"] == {"grant_type": "refresh_token", "client_id": CLIENT_ID,
                             "client_secret": CLIENT_SECRET, "refresh_token": REFRESH}
    insert = fake.calls("/youtube/v3/comments", "POST")[0]
    assert insert["query"] == {"part": "snippet"}
    assert insert["headers"]["Authorization"] == "Bearer ya29.access-1"

    await connector.reply(ReplyTarget("UgyBBB", ALI), "İkinci")
    assert len(fake.calls("/token", "POST")) == 1  # cached until it expires
    assert connector.status(datetime.now(UTC))["read_budget"]["used"] == 100


async def test_an_expired_access_token_is_refreshed_once_and_the_reply_retried(
        fake: FakeYouTube, connect: Connect) -> None:
    connector = connect(**reply_keys())
    await connector.reply(ReplyTarget("UgyAAA", ALI), "Bir")
    fake.tokens.clear()  # Google expired it early
    sent = await connector.reply(ReplyTarget("UgyAAA", ALI), "İki")
    assert sent.external_id == "UgyAAA.brand2"
    assert len(fake.calls("/token", "POST")) == 2
    assert len(fake.calls("/youtube/v3/comments", "POST")) == 3

    fake.answers["POST /youtube/v3/comments"] = [
        web.json_response({"error": {"code": 401}}, status=401),
        web.json_response({"error": {"code": 401}}, status=401)]
    with pytest.raises(ReplyRefused) as refused:
        await connector.reply(ReplyTarget("UgyAAA", ALI), "Üç")
    assert refused.value.status == 401 and "refresh_token" in refused.value.message
    assert len(fake.calls("/youtube/v3/comments", "POST")) == 5  # retried once, no more


async def test_refusals_say_why_and_send_nothing(fake: FakeYouTube, connect: Connect) -> None:
    with pytest.raises(ReplyRefused) as grant:
        await connect(**{**reply_keys(), "refresh_token": "revoked"}).reply(
            ReplyTarget("UgyAAA", ALI), "Merhaba")
    assert grant.value.status == 401 and "invalid_grant" in grant.value.message
    assert "revoked" not in grant.value.message and fake.posted == []

    fake.answers["POST /youtube/v3/comments"] = [google_error(403, "quotaExceeded", "quota")]
    with pytest.raises(ReplyRefused) as quota:
        await connect(**reply_keys()).reply(ReplyTarget("UgyAAA", ALI), "Merhaba")
    assert quota.value.status == 429 and quota.value.retry_after is not None
    assert fake.posted == []


def test_replies_need_the_oauth_client_and_refresh_token() -> None:
    config = YoutubeSource.model_validate({"id": "y", "kind": "youtube", "channel_id": CHANNEL,
                                           "api_key": "k", "client_id": CLIENT_ID})
    connector = YoutubeConnector(config)
    assert connector.missing_reply_credentials() == ["client_secret", "refresh_token"]
    assert (config.channel, config.base_url, config.daily_units) == (
        "youtube", "https://www.googleapis.com", 10_000)
    assert YoutubeConnector.reply_limit == 10_000
    with pytest.raises(ValueError, match="channel_id"):
        YoutubeSource.model_validate({"id": "y", "kind": "youtube", "channel_id": "@acme",
                                      "api_key": "k"})


# --- end to end ------------------------------------------------------------------------------


async def start(db_url: str, clock: Any, enricher: Any, server: Any, **keys: Any) -> Any:
    config = make_config(db_url, sources=[source(server, **keys)])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    return services


async def stored(services: Any) -> dict[str, Mention]:
    async with services.store.read() as session:
        return {m.external_id: m for m in await session.scalars(select(Mention))}


async def stop(services: Any) -> None:
    await services.store.close()
    await services.coordinator.close()


async def test_comments_are_stored_and_the_channels_reply_stops_the_clock(
        db_url: str, clock: Any, enricher: Any, fake: FakeYouTube, server: Any,
        aiohttp_client: Any) -> None:
    bad = thread("UgyBAD", "x", at(6, 10))
    del bad["snippet"]["topLevelComment"]["snippet"]["publishedAt"]
    fake.threads = [thread("UgyAAA", "Siparişim <b>nerede</b>?", at(6, 30)), bad]
    services = await start(db_url, clock, enricher, server)
    assert await services.coordinator.poll("yt") == "ok"
    customer = (await stored(services))["UgyAAA"]
    assert (customer.channel, customer.text, customer.thread) == (
        "youtube", "Siparişim <b>nerede</b>?", "UgyAAA")
    assert customer.url == "https://www.youtube.com/watch?v=vid00000001&lc=UgyAAA"
    assert customer.created_at.astimezone(UTC) == at(6, 30)
    assert customer.status in ("new", "assigned") and customer.deadline_at is not None
    async with services.store.read() as session:
        rejected = list(await session.scalars(select(RejectedItem)))
    assert [(r.external_id, r.reason) for r in rejected] == [("UgyBAD",
                                                              "publishedAt is missing")]

    fake.threads[0] = thread("UgyAAA", "Siparişim <b>nerede</b>?", at(6, 30), replies=[
        reply("UgyAAA", 1, "@ali bakıyoruz", at(6, 45), author=CHANNEL, name="@acme")])
    clock.advance(timedelta(minutes=2))
    assert await services.coordinator.poll("yt") == "ok"
    rows = await stored(services)
    customer, answer = rows["UgyAAA"], rows["UgyAAA.r1"]
    assert customer.status == "responded" and customer.response_external_id == "UgyAAA.r1"
    assert customer.first_response_at.astimezone(UTC) == at(6, 45)
    assert customer.response_url == "https://www.youtube.com/watch?v=vid00000001&lc=UgyAAA.r1"
    assert answer.status == "ignored" and answer.in_reply_to == "UgyAAA"
    assert len(rows) == 2

    client = await aiohttp_client(init_app(services, background=False))
    listed = await (await client.get("/api/v1/sources", headers=AUTH)).json()
    [yt] = [s for s in listed["items"] if s["id"] == "yt"]
    assert yt["read_budget"]["daily_units"] == 10_000
    assert yt["read_budget"]["remaining"] == 10_000 - 2
    await stop(services)


async def test_a_spent_quota_pauses_the_source_until_the_reset_then_it_reads_again(
        db_url: str, clock: Any, enricher: Any, fake: FakeYouTube, server: Any) -> None:
    fake.threads = [thread("UgyAAA", "Kargo nerede?", at(6, 30))]
    fake.answers["GET /youtube/v3/commentThreads"] = [google_error(403, "quotaExceeded",
                                                                   "quota exceeded")]
    services = await start(db_url, clock, enricher, server)
    assert await services.coordinator.poll("yt") == "rate_limited"
    assert services.coordinator.sources["yt"].next_poll_at == RESET
    assert await stored(services) == {}
    clock.advance(RESET - NOW + timedelta(seconds=1))
    assert await services.coordinator.poll("yt") == "ok"
    assert list(await stored(services)) == ["UgyAAA"]
    await stop(services)


async def test_a_reply_sent_from_the_api_posts_under_the_comment_and_stops_the_clock(
        db_url: str, clock: Any, enricher: Any, fake: FakeYouTube, server: Any,
        aiohttp_client: Any) -> None:
    fake.threads = [thread("UgyAAA", "İade ne zaman?", at(6, 30))]
    services = await start(db_url, clock, enricher, server, **reply_keys())
    assert await services.coordinator.poll("yt") == "ok"
    mention_id = (await stored(services))["UgyAAA"].id
    client = await aiohttp_client(init_app(services, background=False))
    url = f"/api/v1/mentions/{mention_id}/reply"

    too_long = await client.post(url, json={"text": "a" * 10_001, "send": True}, headers=AUTH)
    assert too_long.status == 422 and "10000" in (await too_long.text()).replace(",", "")
    assert fake.calls("/youtube/v3/comments", "POST") == []  # refused before sending

    fake.answers["POST /youtube/v3/comments"] = [google_error(403, "quotaExceeded", "quota")]
    refused = await client.post(url, json={"text": "Merhaba!", "send": True}, headers=AUTH)
    assert refused.status == 429
    mention = (await stored(services))["UgyAAA"]
    assert mention.status != "responded" and mention.response_external_id is None

    sent = await client.post(url, json={"text": "Merhaba! Bugün iade edildi.", "send": True},
                             headers=AUTH)
    assert sent.status == 200 and (await sent.json())["reply"]["id"] == "UgyAAA.brand1"
    mention = (await stored(services))["UgyAAA"]
    assert mention.status == "responded" and mention.response_external_id == "UgyAAA.brand1"
    assert mention.response_url == "https://www.youtube.com/watch?v=vid00000001&lc=UgyAAA.brand1"
    assert fake.posted == [{"snippet": {"parentId": "UgyAAA",
                                        "textOriginal": "Merhaba! Bugün iade edildi."}}]
    async with services.store.read() as session:
        kinds = list(await session.scalars(select(MentionEvent.kind).where(
            MentionEvent.mention_id == mention_id)))
    assert kinds.count("replied") == 1
    await stop(services)
