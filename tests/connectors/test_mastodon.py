"""The Mastodon source against a fake instance served on 127.0.0.1: hashtag timeline,
mentions and the brand's own replies read forwards by `min_id`, rate-limit headers, errors,
and replies in place."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from connectors.base import AuthFailed, RateLimited, ReplyRefused, ReplyTarget, SourceError
from connectors.mastodon import MastodonConnector, MastodonSource
from listener.app import build_services, prepare_database
from listener.models import Mention, MentionEvent, RejectedItem, SourceState
from tests.conftest import MONDAY_10, make_config

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mastodon"
TOKEN = "tok-mastodon-s3cret"
PUBLIC_HOST = "https://mastodon.example"  # what the instance puts in its Link headers
SERVER_DATE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
BASE_ID = 113520000000000000
OWNER_ID = "109000000000000001"  # the access token's account, @acme
NOW = MONDAY_10

Connect = Callable[..., MastodonConnector]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def status(n: int, text: str = "Kargom nerede? #acme", minute: int = 30, acct: str = "ali",
           in_reply_to: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Status shaped like the fixture's, with its own id, author and time."""
    made = copy.deepcopy(fixture("tag_timeline.json")[1])
    made.update(id=str(BASE_ID + n), content=f"<p>{text}</p>", spoiler_text="",
                in_reply_to_id=in_reply_to, url=f"{PUBLIC_HOST}/@{acct}/{BASE_ID + n}",
                created_at=(datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
                            + timedelta(minutes=minute)).isoformat().replace("+00:00", ".000Z"))
    made["account"].update(acct=acct, username=acct.split("@")[0], display_name=acct.title())
    made.update(extra)
    return made


def brand_status(n: int, text: str, in_reply_to: str | None, minute: int = 50,
                 **extra: Any) -> dict[str, Any]:
    """A status the token's own account (@acme) posted, shaped like the fixture's."""
    made = copy.deepcopy(fixture("account_statuses.json")[2])
    made.update(id=str(BASE_ID + n), content=f"<p>{text}</p>", in_reply_to_id=in_reply_to,
                url=f"{PUBLIC_HOST}/@acme/{BASE_ID + n}",
                created_at=(datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
                            + timedelta(minutes=minute)).isoformat().replace("+00:00", ".000Z"))
    made.update(extra)
    return made


def numeric(value: str) -> int:
    return int(value)


class FakeMastodon:
    """A Mastodon instance: a hashtag timeline, mention notifications and the token
    account's own statuses paginated the way Mastodon does it (`max_id`, `since_id`,
    `min_id`, `limit`, Link headers), statuses that can be fetched and posted, and queued
    answers to simulate failures (`answers` for any next request, `post_answers` for the
    next posted status only)."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.own_statuses: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []
        self.answers: list[web.Response] = []
        self.post_answers: list[web.Response] = []
        self.rate_headers: dict[str, str] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/api/v1/timelines/tag/{hashtag}", self._tag)
        app.router.add_get("/api/v1/notifications", self._mentions)
        app.router.add_get("/api/v1/accounts/verify_credentials", self._verify_credentials)
        app.router.add_get("/api/v1/accounts/{id}/statuses", self._account_statuses)
        app.router.add_get("/api/v1/statuses/{id}", self._status)
        app.router.add_post("/api/v1/statuses", self._post)
        return app

    def calls(self, path_part: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if path_part in r["path"]]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append({"method": request.method, "path": request.path,
                              "raw_path": request.raw_path, "query": request.query,
                              "headers": request.headers, "json": body})
        response = self.answers.pop(0) if self.answers else await handler(request)
        response.headers.setdefault("Date", format_datetime(SERVER_DATE, usegmt=True))
        for name, value in self.rate_headers.items():
            response.headers.setdefault(name, value)
        return response

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def _tag(self, request: web.Request) -> web.Response:
        return self._page(request, self.statuses)

    async def _mentions(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(fixture("unauthorized.json"), status=401)
        types = request.query.getall("types[]", [])
        return self._page(request, [n for n in self.notifications
                                    if not types or n["type"] in types])

    async def _verify_credentials(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(fixture("unauthorized.json"), status=401)
        return web.json_response(fixture("verify_credentials.json"))

    async def _account_statuses(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != OWNER_ID:
            return web.json_response({"error": "Record not found"}, status=404)
        rows = self.own_statuses
        if request.query.get("exclude_reblogs") == "true":
            rows = [s for s in rows if s.get("reblog") is None]
        return self._page(request, rows)

    def _page(self, request: web.Request, everything: list[dict[str, Any]]) -> web.Response:
        """Newest first. `min_id` gives the page right after it, `since_id` the newest
        page after it, `max_id` the page before it."""
        query = request.query
        limit = min(int(query.get("limit", 20)), 40)
        rows = sorted(everything, key=lambda o: numeric(o["id"]), reverse=True)
        if "max_id" in query:
            rows = [o for o in rows if numeric(o["id"]) < numeric(query["max_id"])]
        if "since_id" in query:
            rows = [o for o in rows if numeric(o["id"]) > numeric(query["since_id"])]
        if "min_id" in query:
            after = [o for o in rows if numeric(o["id"]) > numeric(query["min_id"])]
            page = after[-limit:]
        else:
            page = rows[:limit]
        response = web.json_response(page)
        if page:
            url = f"{PUBLIC_HOST}{request.path}"
            response.headers["Link"] = (f'<{url}?max_id={page[-1]["id"]}>; rel="next", '
                                        f'<{url}?min_id={page[0]["id"]}>; rel="prev"')
        return response

    async def _status(self, request: web.Request) -> web.Response:
        known = self.statuses + [n["status"] for n in self.notifications]
        for found in known:
            if found["id"] == request.match_info["id"]:
                return web.json_response(found)
        return web.json_response({"error": "Record not found"}, status=404)

    async def _post(self, request: web.Request) -> web.Response:
        if self.post_answers:
            return self.post_answers.pop(0)
        if not self._authorized(request):
            return web.json_response(fixture("unauthorized.json"), status=401)
        body = await request.json()
        self.posted.append({"body": body, "headers": request.headers})
        made = fixture("posted_status.json")
        made.update(content=f"<p>{body['status']}</p>", in_reply_to_id=body["in_reply_to_id"],
                    visibility=body["visibility"])
        return web.json_response(made)


@pytest.fixture
def upstream() -> FakeMastodon:
    return FakeMastodon()


@pytest.fixture
async def server(aiohttp_server: Any, upstream: FakeMastodon) -> Any:
    return await aiohttp_server(upstream.app())


def source(server: Any, **overrides: Any) -> dict[str, Any]:
    return {"id": "fedi", "kind": "mastodon", "hashtag": "#acme",
            "base_url": str(server.make_url("")), "interval": "60s", **overrides}


@pytest.fixture
async def connect(server: Any) -> AsyncIterator[Connect]:
    """Connectors made by a test, closed after it whatever happened."""
    made: list[MastodonConnector] = []

    def make(**overrides: Any) -> MastodonConnector:
        made.append(MastodonConnector(MastodonSource.model_validate(source(server, **overrides))))
        return made[-1]

    yield make
    for each in made:
        await each.close()


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None,
           raw: bytes | None = None, content_type: str = "application/json") -> web.Response:
    data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
    return web.Response(status=status, body=data, headers=headers or {},
                        content_type=content_type)


def reset_in(seconds: int) -> str:
    return (SERVER_DATE + timedelta(seconds=seconds)).isoformat().replace("+00:00", ".000Z")


async def test_hashtag_statuses_become_mentions_as_clean_text(upstream: FakeMastodon,
                                                             connect: Connect) -> None:
    upstream.statuses = fixture("tag_timeline.json")
    mastodon = connect()
    batch = await mastodon.fetch(None, NOW)

    jane, ali, boost = batch.items
    assert jane.external_id == "113520000000000300"
    assert jane.text == ("Hey @acme my parcel & refund are both lost: "
                         "https://track.example/orders/12345/status #acme\n\nIs anyone there?")
    assert (jane.author.handle, jane.author.name, jane.author.followers) == (
        "jane@other.example", "Jane Doe", 120)
    assert jane.url == "https://other.example/@jane/113520000000000300"
    assert jane.created_at == datetime(2026, 11, 23, 6, 40, tzinfo=UTC)
    assert jane.channel == "mastodon" and jane.lang == "en"
    assert jane.in_reply_to is None and jane.thread is None
    assert ali.text == "CW: kargo\n\nSiparişim hâlâ gelmedi, üç gündür bekliyorum #acme"
    assert ali.created_at == datetime(2026, 11, 23, 6, 15, 30, 500000, tzinfo=UTC)
    assert not jane.repost and not ali.repost
    # a boost: someone sharing an old post, flagged for the pipeline to keep as noise
    assert (boost.external_id, boost.author.handle, boost.repost) == (
        "113520000000000100", "fan", True)
    assert boost.text == "Old news #acme"
    assert batch.rejected == [] and batch.not_before is None
    assert json.loads(batch.cursor) == {"tag": "113520000000000300"}
    [call] = upstream.requests
    assert call["path"] == "/api/v1/timelines/tag/acme"
    assert call["query"]["limit"] == "40" and "min_id" not in call["query"]
    assert call["headers"]["User-Agent"].startswith("Listener/")
    assert "Authorization" not in call["headers"]


async def test_hashtag_is_url_quoted(upstream: FakeMastodon, connect: Connect) -> None:
    mastodon = connect(hashtag="#kargoçay")
    await mastodon.fetch(None, NOW)
    assert upstream.requests[0]["raw_path"].startswith("/api/v1/timelines/tag/kargo%C3%A7ay?")


async def test_second_poll_sends_the_cursor_and_returns_only_new_statuses(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.statuses = [status(1, minute=1), status(2, minute=2)]
    mastodon = connect()
    first = await mastodon.fetch(None, NOW)
    upstream.statuses.append(status(3, "Hâlâ cevap yok #acme", minute=3, acct="veli"))
    second = await mastodon.fetch(first.cursor, NOW)
    third = await mastodon.fetch(second.cursor, NOW)

    assert [i.external_id for i in first.items] == [str(BASE_ID + 2), str(BASE_ID + 1)]
    assert upstream.requests[1]["query"]["min_id"] == str(BASE_ID + 2)
    [new] = second.items
    assert (new.external_id, new.text, new.author.handle) == (
        str(BASE_ID + 3), "Hâlâ cevap yok #acme", "veli")
    assert third.items == [] and third.cursor == second.cursor  # an empty page


async def test_a_poll_after_a_gap_walks_forward_through_every_page(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.statuses = [status(n, f"#acme {n}", minute=n % 60) for n in range(0, 101)]
    mastodon = connect()
    batch = await mastodon.fetch(json.dumps({"tag": str(BASE_ID)}), NOW)

    assert sorted(int(i.external_id) - BASE_ID for i in batch.items) == list(range(1, 101))
    min_ids = [r["query"]["min_id"] for r in upstream.requests]
    assert min_ids == [str(BASE_ID), str(BASE_ID + 40), str(BASE_ID + 80)]  # from Link prev
    assert json.loads(batch.cursor) == {"tag": str(BASE_ID + 100)}


async def test_page_cap_leaves_the_rest_for_the_next_poll(upstream: FakeMastodon,
                                                         connect: Connect) -> None:
    upstream.statuses = [status(n, minute=n % 60) for n in range(0, 101)]
    mastodon = connect(max_pages=2)
    first = await mastodon.fetch(json.dumps({"tag": str(BASE_ID)}), NOW)
    second = await mastodon.fetch(first.cursor, NOW)
    assert sorted(int(i.external_id) - BASE_ID for i in first.items) == list(range(1, 81))
    assert sorted(int(i.external_id) - BASE_ID for i in second.items) == list(range(81, 101))


async def test_first_poll_walks_back_until_past_the_backfill_window(
        upstream: FakeMastodon, connect: Connect) -> None:
    recent = [status(100 + n, minute=n) for n in range(45)]
    old = [status(n, minute=-3 * 24 * 60 + n) for n in range(60)]
    upstream.statuses = recent + old
    mastodon = connect()
    batch = await mastodon.fetch(None, NOW)
    assert [r["query"].get("max_id") for r in upstream.requests] == [None, str(BASE_ID + 105)]
    assert len(batch.items) == 80  # two pages; the older ones are past the 1-day backfill
    assert json.loads(batch.cursor) == {"tag": str(BASE_ID + 144)}


async def test_used_up_rate_limit_window_sets_not_before_and_waits_for_mentions(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.statuses = [status(1)]
    upstream.notifications = fixture("mentions.json")
    upstream.rate_headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                             "X-RateLimit-Reset": reset_in(300)}
    mastodon = connect(access_token=TOKEN)
    batch = await mastodon.fetch(None, NOW)
    assert [i.external_id for i in batch.items] == [str(BASE_ID + 1)]
    assert batch.not_before == NOW + timedelta(seconds=300)
    assert upstream.calls("notifications") == []  # nothing left in the window for them
    assert json.loads(batch.cursor) == {"tag": str(BASE_ID + 1)}

    upstream.rate_headers["X-RateLimit-Remaining"] = "250"
    later = await mastodon.fetch(batch.cursor, NOW)
    assert later.not_before is None
    assert {i.external_id for i in later.items} == {"113520000000000400",
                                                    "113520000000000300"}


async def test_429_waits_until_the_reset_then_the_next_poll_succeeds(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.statuses = [status(1)]
    upstream.answers = [
        answer(429, fixture("rate_limited.json"), {"X-RateLimit-Remaining": "0",
                                                   "X-RateLimit-Reset": reset_in(120)}),
        answer(429, fixture("rate_limited.json"), {"Retry-After": "30"}),
    ]
    mastodon = connect()
    with pytest.raises(RateLimited) as first:
        await mastodon.fetch(None, NOW)
    with pytest.raises(RateLimited) as second:
        await mastodon.fetch(None, NOW)
    batch = await mastodon.fetch(None, NOW)
    assert first.value.retry_after == 120
    assert second.value.retry_after == 30
    assert [i.external_id for i in batch.items] == [str(BASE_ID + 1)]


async def test_server_errors_and_broken_bodies_are_source_errors(upstream: FakeMastodon,
                                                                 connect: Connect) -> None:
    upstream.answers = [
        answer(503, raw=b"<html>Maintenance</html>", content_type="text/html"),
        answer(200, raw=b"<html>Welcome to nginx</html>", content_type="text/html"),
        answer(200, raw=b'[{"id": "1", "content": "\xff\xfe'),
        answer(200, {"error": "not a list"}),
    ]
    mastodon = connect()
    messages = []
    for _ in range(4):
        with pytest.raises(SourceError) as caught:
            await mastodon.fetch(None, NOW)
        messages.append(str(caught.value))
    assert "HTTP 503" in messages[0]
    assert "expected JSON" in messages[1] and "text/html" in messages[1]
    assert "malformed JSON" in messages[2]
    assert "expected a JSON list" in messages[3]


@pytest.mark.parametrize("code", [401, 403])
async def test_refused_credentials_name_the_key_never_its_value(
        upstream: FakeMastodon, connect: Connect, code: int) -> None:
    upstream.answers = [answer(code, fixture("unauthorized.json"))]
    mastodon = connect(access_token=TOKEN)
    with pytest.raises(AuthFailed) as caught:
        await mastodon.fetch(None, NOW)
    assert "access_token" in str(caught.value) and TOKEN not in str(caught.value)
    assert TOKEN not in repr(mastodon) and TOKEN not in repr(mastodon.config)
    assert upstream.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


async def test_malformed_statuses_are_rejected_and_their_neighbours_kept(
        upstream: FakeMastodon, connect: Connect) -> None:
    no_date = status(3, created_at="yesterday")
    no_account = status(2)
    del no_account["account"]
    upstream.statuses = [status(4), no_date, no_account, status(1)]
    mastodon = connect()
    batch = await mastodon.fetch(None, NOW)
    assert [i.external_id for i in batch.items] == [str(BASE_ID + 4), str(BASE_ID + 1)]
    reasons = {r.external_id: r.reason for r in batch.rejected}
    assert set(reasons) == {str(BASE_ID + 3), str(BASE_ID + 2)}
    assert reasons[str(BASE_ID + 3)].startswith("created_at:")
    assert reasons[str(BASE_ID + 2)].startswith("account:")
    assert '"yesterday"' in next(r.payload for r in batch.rejected
                                 if r.external_id == str(BASE_ID + 3))


async def test_mentions_of_the_brand_account_are_read_with_the_token(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.statuses = fixture("tag_timeline.json")
    upstream.notifications = fixture("mentions.json")
    mastodon = connect(access_token=TOKEN)
    first = await mastodon.fetch(None, NOW)
    upstream.notifications.insert(0, {**copy.deepcopy(upstream.notifications[0]), "id": "70003",
                                      "status": status(500, "@acme iade?", acct="ayse")})
    second = await mastodon.fetch(first.cursor, NOW)

    by_id = {i.external_id: i for i in first.items}
    assert sorted(by_id) == ["113520000000000100", "113520000000000200",
                             "113520000000000300", "113520000000000400"]  # Jane's: once
    dm = by_id["113520000000000400"]
    assert dm.text == "@acme faturamı özelden yazıyorum: iki kez çekildi"
    assert (dm.author.handle, dm.author.name) == ("mehmet", "Mehmet Yılmaz")
    assert json.loads(first.cursor) == {"tag": "113520000000000300", "mentions": "70002"}
    mentions_calls = upstream.calls("notifications")
    assert mentions_calls[0]["query"].getall("types[]") == ["mention"]
    assert mentions_calls[1]["query"]["min_id"] == "70002"
    assert [i.external_id for i in second.items] == [str(BASE_ID + 500)]


async def test_the_token_owners_own_replies_come_back_as_the_brands(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.statuses = fixture("tag_timeline.json")
    upstream.own_statuses = fixture("account_statuses.json")
    mastodon = connect(access_token=TOKEN)
    mastodon.watch_brand(["acme", "acme_yardim"])
    first = await mastodon.fetch(None, NOW)

    by_id = {i.external_id: i for i in first.items}
    assert sorted(by_id) == ["113520000000000100", "113520000000000200",
                             "113520000000000300", "113520000000000600"]
    # ...not the brand's plain post nor its self-thread
    reply = by_id["113520000000000600"]
    assert reply.by_brand and reply.in_reply_to == "113520000000000200"
    assert reply.text == "@ali Merhaba Ali, siparişinize bakıyoruz & size yazacağız."
    assert (reply.author.handle, reply.author.name) == ("acme", "ACME Destek")
    assert reply.created_at == datetime(2026, 11, 23, 6, 50, tzinfo=UTC)
    assert reply.url == f"{PUBLIC_HOST}/@acme/113520000000000600"
    assert reply.channel == "mastodon"
    assert not by_id["113520000000000200"].by_brand  # the customers' statuses stay theirs
    assert json.loads(first.cursor) == {"tag": "113520000000000300",
                                        "own": "113520000000000620"}
    [whoami] = upstream.calls("verify_credentials")
    assert whoami["headers"]["Authorization"] == f"Bearer {TOKEN}"
    [own] = upstream.calls(f"/accounts/{OWNER_ID}/statuses")
    assert own["query"]["exclude_reblogs"] == "true" and own["query"]["limit"] == "40"
    assert "min_id" not in own["query"] and "exclude_replies" not in own["query"]
    assert mastodon.status(NOW) == {"brand_replies": {
        "watched": True, "accounts": ["acme"], "not_watched": ["acme_yardim"],
        "problem": None}}

    upstream.own_statuses.insert(0, brand_status(700, "@jane@other.example we are on it",
                                                 "113520000000000300", minute=55))
    second = await mastodon.fetch(first.cursor, NOW)
    [new] = second.items
    assert (new.external_id, new.by_brand, new.in_reply_to) == (
        str(BASE_ID + 700), True, "113520000000000300")
    assert upstream.calls(f"/accounts/{OWNER_ID}/statuses")[1]["query"]["min_id"] == \
        "113520000000000620"
    assert len(upstream.calls("verify_credentials")) == 1  # the owner is asked once
    assert json.loads(second.cursor)["own"] == str(BASE_ID + 700)


async def test_the_brands_status_in_the_hashtag_timeline_is_the_brands_too(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.statuses = [status(1), brand_status(2, "Bakıyoruz #acme", str(BASE_ID + 1))]
    upstream.own_statuses = [brand_status(2, "Bakıyoruz #acme", str(BASE_ID + 1))]
    batch = await connect(access_token=TOKEN).fetch(None, NOW)
    by_id = {i.external_id: i for i in batch.items}
    assert set(by_id) == {str(BASE_ID + 1), str(BASE_ID + 2)}
    assert by_id[str(BASE_ID + 2)].by_brand and not by_id[str(BASE_ID + 1)].by_brand


async def test_without_a_token_no_account_is_read(upstream: FakeMastodon,
                                                  connect: Connect) -> None:
    upstream.statuses = [status(1)]
    upstream.own_statuses = fixture("account_statuses.json")
    mastodon = connect()
    mastodon.watch_brand(["acme"])
    batch = await mastodon.fetch(None, NOW)
    assert [i.external_id for i in batch.items] == [str(BASE_ID + 1)]
    assert [r["path"] for r in upstream.requests] == ["/api/v1/timelines/tag/acme"]
    assert json.loads(batch.cursor) == {"tag": str(BASE_ID + 1)}
    brand = mastodon.status(NOW)["brand_replies"]
    assert (brand["watched"], brand["accounts"], brand["not_watched"]) == (False, [], ["acme"])
    assert "access_token" in brand["problem"]


async def test_a_token_without_the_accounts_scope_still_reads_the_mentions(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.notifications = fixture("mentions.json")
    upstream.own_statuses = fixture("account_statuses.json")
    upstream.answers = [answer(403, {"error": "This action is outside the authorized scopes"})]
    mastodon = connect(access_token=TOKEN)
    first = await mastodon.fetch(None, NOW)
    await mastodon.fetch(first.cursor, NOW)
    assert {i.external_id for i in first.items} == {"113520000000000300",
                                                    "113520000000000400"}
    assert upstream.calls("/statuses") == [] and len(upstream.calls("verify_credentials")) == 1
    brand = mastodon.status(NOW)["brand_replies"]
    assert not brand["watched"] and "read:accounts" in brand["problem"]
    assert TOKEN not in json.dumps(mastodon.status(NOW))


async def test_reply_posts_a_threaded_status_and_returns_its_id_and_url(
        upstream: FakeMastodon, connect: Connect) -> None:
    upstream.statuses = fixture("tag_timeline.json")
    upstream.notifications = fixture("mentions.json")
    mastodon = connect(access_token=TOKEN, send_replies=True)
    assert mastodon.missing_reply_credentials() == []
    sent = await mastodon.reply(ReplyTarget("113520000000000200", "ali"),
                                "Merhaba Ali, siparişinize bakıyoruz.")
    await mastodon.reply(ReplyTarget("113520000000000300", "jane@other.example"),
                                 "@jane@other.example we are on it")
    await mastodon.reply(ReplyTarget("113520000000000400", "mehmet"), "Özür dileriz")

    assert sent.external_id == "113520000000009999"
    assert sent.url == "https://mastodon.example/@acme/113520000000009999"
    bodies = [p["body"] for p in upstream.posted]
    assert bodies[0] == {"status": "@ali Merhaba Ali, siparişinize bakıyoruz.",
                         "in_reply_to_id": "113520000000000200", "visibility": "public"}
    assert bodies[1]["status"] == "@jane@other.example we are on it"  # not addressed twice
    assert bodies[2]["status"] == "@mehmet Özür dileriz"
    assert bodies[2]["visibility"] == "direct"  # a private complaint stays private
    keys = [p["headers"]["Idempotency-Key"] for p in upstream.posted]
    assert len(set(keys)) == 3 and all(keys)


@pytest.mark.parametrize("code,body,headers", [
    (401, fixture("unauthorized.json"), {}),
    (403, {"error": "This action is outside the authorized scopes"}, {}),
    (422, fixture("unprocessable.json"), {}),
    (429, fixture("rate_limited.json"), {"X-RateLimit-Reset": reset_in(90)}),
    (503, {"error": "down"}, {}),
])
async def test_refused_replies_raise_reply_refused(upstream: FakeMastodon, connect: Connect,
                                                   code: int, body: Any,
                                                   headers: dict[str, str]) -> None:
    upstream.statuses = [status(1)]
    mastodon = connect(access_token=TOKEN, send_replies=True)
    upstream.post_answers = [answer(code, body, headers)]
    with pytest.raises(ReplyRefused) as caught:
        await mastodon.reply(ReplyTarget(str(BASE_ID + 1), "ali"), "Bakıyoruz")
    assert caught.value.status == code and upstream.posted == []
    assert TOKEN not in caught.value.message
    if code in (401, 403):
        assert "access_token" in caught.value.message
    if code == 422:
        assert "character limit" in caught.value.message
    assert caught.value.retry_after == (90 if code == 429 else None)


async def test_reply_to_a_deleted_status_is_refused_and_sends_nothing(
        upstream: FakeMastodon, connect: Connect) -> None:
    mastodon = connect(access_token=TOKEN, send_replies=True)
    with pytest.raises(ReplyRefused, match="no longer exists"):
        await mastodon.reply(ReplyTarget("404404", "ali"), "Bakıyoruz")
    assert upstream.posted == []


def test_replies_need_the_access_token() -> None:
    config = MastodonSource.model_validate({"id": "m", "kind": "mastodon", "hashtag": "acme",
                                            "send_replies": True})
    assert MastodonConnector(config).missing_reply_credentials() == ["access_token"]
    assert config.base_url == "https://mastodon.social" and config.channel == "mastodon"
    with pytest.raises(ValueError, match="hashtag"):
        MastodonSource.model_validate({"id": "m", "kind": "mastodon", "hashtag": "# "})


async def test_end_to_end_statuses_are_stored_and_a_brand_reply_stops_the_clock(
        db_url: str, clock: Any, enricher: Any, upstream: FakeMastodon, server: Any) -> None:
    bad = status(2)
    bad["created_at"] = "not a date"
    upstream.statuses = [status(1, "Siparişim nerede? #acme", minute=30), bad]
    config = make_config(db_url, sources=[source(server)],
                         brand_accounts={"mastodon": ["acme"]})
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    assert await services.coordinator.poll("fedi") == "ok"
    upstream.statuses.append(status(3, "@ali bakıyoruz #acme", minute=45, acct="acme",
                                    in_reply_to=str(BASE_ID + 1)))
    clock.advance(timedelta(minutes=5))
    assert await services.coordinator.poll("fedi") == "ok"

    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
        rejected = list(await session.scalars(select(RejectedItem)))
        events = list(await session.scalars(select(MentionEvent).where(
            MentionEvent.mention_id == rows[str(BASE_ID + 1)].id)))
    customer, brand = rows[str(BASE_ID + 1)], rows[str(BASE_ID + 3)]
    assert customer.channel == "mastodon" and customer.text == "Siparişim nerede? #acme"
    assert customer.created_at.astimezone(UTC) == datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
    assert customer.url == f"{PUBLIC_HOST}/@ali/{BASE_ID + 1}"
    assert customer.status == "responded" and customer.response_external_id == str(BASE_ID + 3)
    assert customer.first_response_at.astimezone(UTC) == datetime(2026, 11, 23, 6, 45,
                                                                  tzinfo=UTC)
    assert brand.status == "ignored" and brand.in_reply_to == str(BASE_ID + 1)
    assert [r.external_id for r in rejected] == [str(BASE_ID + 2)]
    assert "created_at" in rejected[0].reason
    assert any(e.kind == "responded" and e.data.get("native") for e in events)
    assert upstream.calls("tag")[-1]["query"]["min_id"] == str(BASE_ID + 2)
    await services.store.close()
    await services.coordinator.close()


async def test_end_to_end_a_boost_is_stored_as_noise_never_queued(
        db_url: str, clock: Any, enricher: Any, upstream: FakeMastodon, server: Any) -> None:
    original = status(1, "Kargom 5 gündür gelmedi, rezalet #acme", minute=30)
    boost = status(2, "", minute=40, acct="fan", reblog=copy.deepcopy(original))
    upstream.statuses = [boost, original]
    services = build_services(make_config(db_url, sources=[source(server)]), clock=clock,
                              enricher=enricher)
    await prepare_database(services, migrate=True)
    assert await services.coordinator.poll("fedi") == "ok"
    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
        [why] = await session.scalars(select(MentionEvent.data).where(
            MentionEvent.mention_id == rows[str(BASE_ID + 2)].id))
    shared, said = rows[str(BASE_ID + 2)], rows[str(BASE_ID + 1)]
    assert (shared.status, shared.deadline_at, shared.assignee) == ("ignored", None, None)
    assert why["reason"] == "noise: repost" and "rezalet" in shared.text
    assert said.status in ("new", "assigned") and said.deadline_at is not None
    await services.store.close()
    await services.coordinator.close()


@pytest.mark.parametrize("brand_accounts", [{"mastodon": ["acme"]}, {"twitter": ["acme"]}],
                         ids=["listed", "token-owner-only"])
async def test_end_to_end_a_reply_posted_in_the_mastodon_app_stops_the_clock(
        db_url: str, clock: Any, enricher: Any, upstream: FakeMastodon, server: Any,
        brand_accounts: dict[str, list[str]]) -> None:
    """The brand answers in the Mastodon app, without the hashtag: only its own timeline
    shows the reply. Unlisted in `brand_accounts`, it is still the brand's (by_brand)."""
    upstream.statuses = [status(1, "Siparişim nerede? #acme", minute=30)]
    config = make_config(db_url, sources=[source(server, access_token=TOKEN)],
                         brand_accounts=brand_accounts)
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    assert await services.coordinator.poll("fedi") == "ok"
    async with services.store.read() as session:
        [queued] = await session.scalars(select(Mention))
    assert queued.status in ("new", "assigned") and queued.deadline_at is not None

    upstream.own_statuses = [brand_status(2, "@ali Merhaba, hemen bakıyoruz",
                                          str(BASE_ID + 1), minute=47)]
    clock.advance(timedelta(minutes=5))
    assert await services.coordinator.poll("fedi") == "ok"

    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
        brand_events = list(await session.scalars(select(MentionEvent).where(
            MentionEvent.mention_id == rows[str(BASE_ID + 2)].id)))
    customer, brand = rows[str(BASE_ID + 1)], rows[str(BASE_ID + 2)]
    assert customer.status == "responded"
    assert customer.first_response_at.astimezone(UTC) == datetime(2026, 11, 23, 6, 47,
                                                                  tzinfo=UTC)
    assert customer.response_external_id == str(BASE_ID + 2)
    assert customer.response_url == f"{PUBLIC_HOST}/@acme/{BASE_ID + 2}"
    assert brand.status == "ignored" and brand.in_reply_to == str(BASE_ID + 1)
    assert brand.assignee is None and brand.deadline_at is None
    assert [e.kind for e in brand_events] == ["ingested"]
    assert brand_events[0].data["reason"] == "brand account"
    async with services.store.read() as session:
        state = await session.get(SourceState, "fedi")
    assert json.loads(state.cursor)["own"] == str(BASE_ID + 2)  # a restart goes on from here
    await services.store.close()
    await services.coordinator.close()
