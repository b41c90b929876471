"""The Discourse source against a fake forum served on 127.0.0.1: latest posts walked back
to the cursor, gaps filled across polls, rate limits, errors, and replies in the topic."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from connectors.base import AuthFailed, RateLimited, ReplyRefused, ReplyTarget, SourceError
from connectors.discourse import DiscourseConnector, DiscourseSource
from listener.app import build_services, prepare_database
from listener.models import Mention, RejectedItem
from tests.conftest import MONDAY_10, make_config

FIXTURES = Path(__file__).parent.parent / "fixtures" / "discourse"
KEY = "dk-s3cret-0123456789"
USER = "acme_support"
NOW = MONDAY_10
PAGE = 50

Connect = Callable[..., DiscourseConnector]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def post(post_id: int, text: str = "Export still broken", minute: int = 30, topic: int = 400,
         number: int = 2, username: str = "deniz", **extra: Any) -> dict[str, Any]:
    """A latest_posts entry shaped like the fixture's, with its own id, topic and time."""
    made = copy.deepcopy(fixture("posts.json")["latest_posts"][2])
    made.update(id=post_id, cooked=f"<p>{text}</p>", topic_id=topic, post_number=number,
                topic_slug=f"topic-{topic}", topic_title=f"Topic {topic}", username=username,
                name=username.title(), reply_to_post_number=None,
                created_at=(datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
                            + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"))
    made.update(extra)
    return made


class FakeDiscourse:
    """A Discourse forum's `posts.json` as current Discourse serves it (newest 50 visible
    posts with ids below `before`), or, with `legacy`, as older versions did (the visible
    posts in a window of 50 ids up to and including `before`)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.private_ids: set[int] = set()
        self.legacy = False
        self.requests: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.answers: list[web.Response] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/posts.json", self._latest)
        app.router.add_post("/posts.json", self._create)
        app.router.add_get("/posts/{id}.json", self._show)
        return app

    def befores(self) -> list[str | None]:
        return [r["query"].get("before") for r in self.requests
                if r["method"] == "GET" and r["path"] == "/posts.json"]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append({"method": request.method, "path": request.path,
                              "query": request.query, "headers": request.headers,
                              "json": body})
        return self.answers.pop(0) if self.answers else await handler(request)

    async def _latest(self, request: web.Request) -> web.Response:
        before = int(request.query.get("before", 0)) or None
        by_id = sorted(self.posts, key=lambda p: p["id"], reverse=True)
        if self.legacy:
            last = before or max([p["id"] for p in self.posts] + list(self.private_ids))
            page = [p for p in by_id if last - PAGE < p["id"] <= last]
            page.sort(key=lambda p: p["created_at"], reverse=True)
        else:
            page = [p for p in by_id if before is None or p["id"] < before][:PAGE]
        return web.json_response({"latest_posts": page})

    async def _show(self, request: web.Request) -> web.Response:
        for found in self.posts:
            if str(found["id"]) == request.match_info["id"]:
                return web.json_response(found)
        return web.json_response({"errors": ["The requested URL or resource could not be "
                                             "found."], "error_type": "not_found"}, status=404)

    async def _create(self, request: web.Request) -> web.Response:
        if (request.headers.get("Api-Key"), request.headers.get("Api-Username")) != (KEY, USER):
            return web.json_response(fixture("invalid_access.json"), status=403)
        body = await request.json()
        if len(body["raw"]) < 20:
            return web.json_response(fixture("too_short.json"), status=422)
        self.created.append(body)
        topic = [p for p in self.posts if p["topic_id"] == body["topic_id"]]
        made = fixture("created_post.json")
        made.update(id=max([p["id"] for p in self.posts] + list(self.private_ids)) + 1,
                    topic_id=body["topic_id"], cooked=f"<p>{body['raw']}</p>",
                    topic_slug=topic[0]["topic_slug"] if topic else "topic",
                    post_number=max([p["post_number"] for p in topic], default=0) + 1,
                    reply_to_post_number=body.get("reply_to_post_number"))
        self.posts.append(made)
        return web.json_response(made)


@pytest.fixture
def forum() -> FakeDiscourse:
    return FakeDiscourse()


@pytest.fixture
async def server(aiohttp_server: Any, forum: FakeDiscourse) -> Any:
    return await aiohttp_server(forum.app())


def source(server: Any, **overrides: Any) -> dict[str, Any]:
    return {"id": "forum", "kind": "discourse", "base_url": str(server.make_url("/")),
            "interval": "60s", **overrides}


@pytest.fixture
async def connect(server: Any) -> AsyncIterator[Connect]:
    """Connectors made by a test, closed after it whatever happened."""
    made: list[DiscourseConnector] = []

    def make(**overrides: Any) -> DiscourseConnector:
        made.append(DiscourseConnector(DiscourseSource.model_validate(source(server, **overrides))))
        return made[-1]

    yield make
    for each in made:
        await each.close()


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None,
           raw: bytes | None = None, content_type: str = "application/json") -> web.Response:
    data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
    return web.Response(status=status, body=data, headers=headers or {},
                        content_type=content_type)


def ids(batch: Any) -> list[int]:
    return sorted(int(i.external_id) for i in batch.items)


async def test_latest_posts_become_mentions_with_topic_context(
        forum: FakeDiscourse, server: Any, connect: Connect) -> None:
    forum.posts = fixture("posts.json")["latest_posts"]
    discourse = connect(api_key=KEY, api_username=USER)
    batch = await discourse.fetch(None, NOW)

    bob, deniz = batch.items  # the "pinned" notice and the staff whisper are not posts
    base = str(server.make_url("")).rstrip("/")
    assert bob.external_id == "1203"
    assert bob.text == "Same here since yesterday — see the screenshot. @acme_support any news?"
    assert (bob.author.handle, bob.author.name, bob.author.followers) == ("bob", "Bob Stone",
                                                                          None)
    assert bob.url == f"{base}/t/export-to-csv-never-finishes/310/2"
    assert bob.created_at == datetime(2026, 11, 23, 6, 35, 10, 120000, tzinfo=UTC)
    assert bob.channel == "discourse" and bob.thread == "310" and bob.in_reply_to is None
    assert deniz.text == ("Export to CSV never finishes\n\nThe export button spins forever & "
                          "the file never arrives. Tried the status page: all green.\n\n"
                          "Account: ACME-4411")
    assert deniz.url == f"{base}/t/export-to-csv-never-finishes/310/1"
    assert batch.rejected == [] and json.loads(batch.cursor) == {"after": 1203}
    [call] = forum.requests
    assert "before" not in call["query"]
    assert (call["headers"]["Api-Key"], call["headers"]["Api-Username"]) == (KEY, USER)
    assert call["headers"]["User-Agent"].startswith("Listener/")


async def test_second_poll_returns_only_posts_newer_than_the_cursor(forum: FakeDiscourse,
                                                                   connect: Connect) -> None:
    forum.posts = [post(n, minute=n - 90) for n in range(91, 101)]
    discourse = connect()
    first = await discourse.fetch(None, NOW)
    forum.posts.append(post(105, "Any update on the export?", minute=20, username="bob"))
    second = await discourse.fetch(first.cursor, NOW)
    third = await discourse.fetch(second.cursor, NOW)
    assert ids(first) == list(range(91, 101))
    [new] = second.items
    assert (new.external_id, new.text, new.author.handle) == ("105", "Any update on the export?",
                                                              "bob")
    assert third.items == [] and third.cursor == second.cursor == '{"after": 105}'
    assert forum.befores() == [None, None, None]  # each page already reached the cursor
    assert "Api-Key" not in forum.requests[0]["headers"]  # a public forum needs no key


async def test_a_full_page_of_new_posts_pages_back_to_the_cursor(forum: FakeDiscourse,
                                                                connect: Connect) -> None:
    forum.posts = [post(n, minute=n % 60) for n in range(901, 1071)]
    discourse = connect()
    batch = await discourse.fetch(json.dumps({"after": 1000}), NOW)
    assert ids(batch) == list(range(1001, 1071))
    assert forum.befores() == [None, "1021"]
    assert json.loads(batch.cursor) == {"after": 1070}


async def test_page_cap_remembers_the_unread_stretch_and_fills_it_next(
        forum: FakeDiscourse, connect: Connect) -> None:
    forum.posts = [post(n, minute=n % 60) for n in range(901, 1151)]
    discourse = connect(max_pages=2)
    first = await discourse.fetch(json.dumps({"after": 1000}), NOW)
    forum.posts.append(post(1151, "new while we were catching up"))
    second = await discourse.fetch(first.cursor, NOW)
    third = await discourse.fetch(second.cursor, NOW)
    assert ids(first) == list(range(1051, 1151))
    assert json.loads(first.cursor) == {"after": 1000, "top": 1150, "before": 1051}
    assert ids(second) == list(range(1001, 1051))  # the stretch the cap left unread
    assert json.loads(second.cursor) == {"after": 1150}
    assert ids(third) == [1151]


async def test_legacy_id_windows_with_no_visible_posts_do_not_end_the_walk(
        forum: FakeDiscourse, connect: Connect) -> None:
    forum.legacy = True
    forum.posts = [post(n, minute=n - 990) for n in range(991, 1011)] + [post(1080, minute=50)]
    forum.private_ids = set(range(1011, 1080))  # a private category's busy morning
    discourse = connect()
    batch = await discourse.fetch(json.dumps({"after": 1000}), NOW)
    assert [i.external_id for i in batch.items].count("1080") == 1
    assert ids(batch) == [*range(1001, 1011), 1080]
    assert forum.befores() == [None, "1080", "1030"]
    assert json.loads(batch.cursor) == {"after": 1080}


async def test_first_poll_stops_at_the_backfill_window(forum: FakeDiscourse,
                                                       connect: Connect) -> None:
    forum.posts = [post(n, minute=n % 50) for n in range(200, 260)] + [
        post(n, minute=-2 * 24 * 60) for n in range(1, 200)]
    discourse = connect()
    batch = await discourse.fetch(None, NOW)
    assert forum.befores() == [None, "210"]
    assert ids(batch) == list(range(160, 260))  # older ones are stored as history only
    assert json.loads(batch.cursor) == {"after": 259}


async def test_rate_limit_waits_as_discourse_says_then_succeeds(forum: FakeDiscourse,
                                                               connect: Connect) -> None:
    forum.posts = [post(1)]
    forum.answers = [answer(429, fixture("rate_limited.json"), {"Retry-After": "40"}),
                     answer(429, fixture("rate_limited.json"))]
    discourse = connect()
    with pytest.raises(RateLimited) as header:
        await discourse.fetch(None, NOW)
    with pytest.raises(RateLimited) as body:
        await discourse.fetch(None, NOW)
    batch = await discourse.fetch(None, NOW)
    assert header.value.retry_after == 40
    assert body.value.retry_after == 13  # extras.wait_seconds
    assert ids(batch) == [1]


async def test_server_errors_and_broken_bodies_are_source_errors(forum: FakeDiscourse,
                                                                 connect: Connect) -> None:
    forum.answers = [
        answer(502, raw=b"<html>Bad Gateway</html>", content_type="text/html"),
        answer(200, raw=b"<html>Discourse is updating</html>", content_type="text/html"),
        answer(200, raw=b'{"latest_posts": [{"cooked": "\xff\xfe'),
        answer(200, {"users": []}),
    ]
    discourse = connect()
    messages = []
    for _ in range(4):
        with pytest.raises(SourceError) as caught:
            await discourse.fetch(None, NOW)
        messages.append(str(caught.value))
    assert "HTTP 502" in messages[0]
    assert "expected JSON" in messages[1]
    assert "malformed JSON" in messages[2]
    assert "latest_posts" in messages[3]


@pytest.mark.parametrize("code", [401, 403])
async def test_refused_credentials_name_the_keys_never_their_values(
        forum: FakeDiscourse, connect: Connect, code: int) -> None:
    forum.answers = [answer(code, fixture("invalid_access.json"))]
    discourse = connect(api_key=KEY, api_username=USER)
    with pytest.raises(AuthFailed) as caught:
        await discourse.fetch(None, NOW)
    message = str(caught.value)
    assert "api_key" in message and "api_username" in message and KEY not in message
    assert KEY not in repr(discourse) and KEY not in repr(discourse.config)


async def test_malformed_posts_are_rejected_and_their_neighbours_kept(forum: FakeDiscourse,
                                                                      connect: Connect) -> None:
    nameless = post(4)
    del nameless["username"]
    forum.posts = [post(5), nameless, post(3, created_at="Monday morning"), post(2),
                   post(1, topic_id="not-a-topic")]
    discourse = connect()
    batch = await discourse.fetch(None, NOW)
    assert ids(batch) == [2, 5]
    reasons = {r.external_id: r.reason for r in batch.rejected}
    assert set(reasons) == {"4", "3", "1"}
    assert reasons["4"].startswith("username:") and reasons["3"].startswith("created_at:")
    assert reasons["1"].startswith("topic_id:")
    assert json.loads(batch.cursor) == {"after": 5}


async def test_reply_posts_in_the_topic_as_a_reply_to_the_post(
        forum: FakeDiscourse, server: Any, connect: Connect) -> None:
    forum.posts = fixture("posts.json")["latest_posts"]
    discourse = connect(api_key=KEY, api_username=USER, send_replies=True)
    [bob, _] = (await discourse.fetch(None, NOW)).items
    assert discourse.missing_reply_credentials() == []
    sent = await discourse.reply(ReplyTarget(bob.external_id, "bob", bob.url, bob.thread),
                                 "Hi Bob, a fix for the export ships today.")
    by_lookup = await discourse.reply(ReplyTarget("1201", "deniz"),
                                      "Hi Deniz, a fix for the export ships today.")

    base = str(server.make_url("")).rstrip("/")
    assert forum.created[0] == {"topic_id": 310, "raw": "Hi Bob, a fix for the export ships "
                                "today.", "reply_to_post_number": 2}
    assert sent.external_id == "1204"
    assert sent.url == f"{base}/t/export-to-csv-never-finishes/310/3"
    assert forum.created[1]["reply_to_post_number"] == 1  # found via /posts/1201.json
    assert by_lookup.url == f"{base}/t/export-to-csv-never-finishes/310/4"


@pytest.mark.parametrize("code,body,headers,words", [
    (422, fixture("too_short.json"), {}, "Body is too short"),
    (403, fixture("invalid_access.json"), {}, "api_key and api_username"),
    (401, {"errors": ["invalid api key"]}, {}, "api_key and api_username"),
    (429, fixture("rate_limited.json"), {}, "too many times"),
    (503, None, {}, "HTTP 503"),
])
async def test_refused_replies_raise_reply_refused_with_discourses_words(
        forum: FakeDiscourse, server: Any, connect: Connect, code: int, body: Any,
        headers: dict[str, str], words: str) -> None:
    forum.answers = [answer(code, body, headers) if body is not None else
                     answer(code, raw=b"Service Unavailable", content_type="text/plain")]
    discourse = connect(api_key=KEY, api_username=USER, send_replies=True)
    target = ReplyTarget("1201", "deniz", str(server.make_url("/t/export/310/1")), "310")
    with pytest.raises(ReplyRefused) as caught:
        await discourse.reply(target, "Hi Deniz, we are looking into it.")
    assert caught.value.status == code and words in caught.value.message
    assert KEY not in caught.value.message
    assert caught.value.retry_after == (13 if code == 429 else None)
    assert forum.created == []


async def test_a_too_short_reply_is_refused_by_the_forum_itself(forum: FakeDiscourse,
                                                               connect: Connect) -> None:
    forum.posts = [post(7, topic=310, number=1)]
    discourse = connect(api_key=KEY, api_username=USER, send_replies=True)
    with pytest.raises(ReplyRefused) as caught:
        await discourse.reply(ReplyTarget("7", "deniz"), "Thanks!")
    assert caught.value.status == 422 and "minimum is 20 characters" in caught.value.message


def test_replies_need_the_key_and_the_username() -> None:
    config = DiscourseSource.model_validate({"id": "f", "kind": "discourse",
                                             "base_url": "https://forum.example.com/",
                                             "send_replies": True})
    assert DiscourseConnector(config).missing_reply_credentials() == ["api_key",
                                                                      "api_username"]
    assert config.base_url == "https://forum.example.com" and config.channel == "discourse"


async def test_end_to_end_a_brand_post_in_the_topic_answers_the_earlier_posts(
        db_url: str, clock: Any, enricher: Any, forum: FakeDiscourse, server: Any) -> None:
    forum.posts = fixture("posts.json")["latest_posts"] + [
        post(1190, "Billing page shows an error", minute=5, topic=311, number=1),
        post(1189, created_at="garbage")]
    config = make_config(db_url, sources=[source(server)],
                         brand_accounts={"discourse": [USER]})
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    assert await services.coordinator.poll("forum") == "ok"
    forum.posts += [
        post(1204, "We found the cause, a fix ships today.", minute=50, topic=310, number=3,
             username=USER),
        post(1205, "Thanks! Will it cover old exports too?", minute=55, topic=310, number=4,
             username="bob"),
    ]
    clock.advance(timedelta(minutes=5))
    assert await services.coordinator.poll("forum") == "ok"

    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
        rejected = list(await session.scalars(select(RejectedItem)))
    assert sorted(rows) == ["1190", "1201", "1203", "1204", "1205"]
    for answered in ("1201", "1203"):
        assert rows[answered].status == "responded"
        assert rows[answered].response_external_id == "1204"
        assert rows[answered].first_response_at.astimezone(UTC) == datetime(
            2026, 11, 23, 6, 50, tzinfo=UTC)
    assert rows["1205"].status == "new"  # asked after the brand's answer
    assert rows["1190"].status == "new" and rows["1190"].thread == "311"
    assert rows["1204"].status == "ignored"
    assert rows["1201"].text.startswith("Export to CSV never finishes\n\n")
    assert rows["1201"].channel == "discourse" and rows["1201"].deadline_at is not None
    assert [r.external_id for r in rejected] == ["1189"]
    await services.store.close()
    await services.coordinator.close()
