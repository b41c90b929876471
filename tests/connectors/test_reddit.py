"""The reddit source against a fake Reddit on 127.0.0.1 serving recorded listings: paging,
the cursor across polls, rate limits, OAuth, refusals, replies, the brand accounts' own
comments, and end to end through the coordinator on both databases."""

from __future__ import annotations

import base64
import copy
import html
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from connectors.base import AuthFailed, RateLimited, ReplyRefused, ReplyTarget, SourceError
from connectors.reddit import RedditConnector, RedditSource
from listener.app import build_services, init_app, prepare_database
from listener.models import Mention, MentionEvent, RejectedItem
from tests.conftest import BASE_CONFIG, MONDAY_10, make_config
from tests.web.test_api import AUTH

FIXTURES = Path(__file__).parent.parent / "fixtures" / "reddit"
NOW = MONDAY_10.astimezone(UTC)
CLIENT_ID, CLIENT_SECRET = "acme-listener-app", "s3cr3t-app-value"
USERNAME, PASSWORD = "acme_support", "pa55-word-value"
AGENT = "server:acme-listener:1.0 (by /u/acme_support)"
BRAND_COMMENTS = f"/user/{USERNAME}/comments"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=UTC)


def legacy_escaped(value: Any) -> Any:
    """What Reddit does to every string without `raw_json=1`."""
    if isinstance(value, str):
        return html.escape(value, quote=False)
    if isinstance(value, list):
        return [legacy_escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: legacy_escaped(v) for k, v in value.items()}
    return value


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


class FakeReddit:
    """Listings by path and `after`, an OAuth token endpoint that checks basic auth, and the
    comment endpoint; `queued` responses are served first, per path."""

    def __init__(self) -> None:
        self.pages: dict[str, dict[str | None, Any]] = {}
        self.queued: dict[str, list[Callable[[], web.StreamResponse]]] = defaultdict(list)
        self.seen: list[Seen] = []
        self.rate: dict[str, str] = {}
        self.issued: list[str] = []
        self.valid: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/access_token", self.token)
        app.router.add_post("/oauth/api/comment", self.comment)
        app.router.add_get("/oauth/{path:.+}", self.oauth_listing)
        app.router.add_get("/{path:.+}.json", self.public_listing)
        return app

    def queue(self, path: str, status: int, body: bytes | str | dict[str, Any] = b"",
              content_type: str = "application/json", **headers: str) -> None:
        raw = json.dumps(body).encode() if isinstance(body, dict) else \
            body.encode() if isinstance(body, str) else body
        self.queued[path].append(lambda: web.Response(
            status=status, body=raw, headers={"Content-Type": content_type, **headers}))

    def requests(self, path_prefix: str = "") -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(path_prefix)
                and not s.path.endswith("access_token")]

    def token_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "/api/v1/access_token"]

    async def record(self, request: web.Request) -> Seen:
        form = await request.post() if request.method == "POST" else {}
        seen = Seen(request.method, request.path, dict(request.query), dict(request.headers),
                    {k: str(v) for k, v in form.items()})
        self.seen.append(seen)
        return seen

    def listing(self, request: web.Request, path: str) -> web.StreamResponse:
        if self.queued[path]:
            return self.queued[path].pop(0)()
        doc = self.pages.get(path, {}).get(request.query.get("after"),
                                           fixture("empty_listing.json"))
        if request.query.get("raw_json") != "1":
            doc = legacy_escaped(doc)
        return web.json_response(doc, headers=self.rate)

    async def public_listing(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return self.listing(request, "/" + request.match_info["path"])

    async def oauth_listing(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        if seen.headers.get("Authorization", "").removeprefix("bearer ") not in self.valid:
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        return self.listing(request, "/" + request.match_info["path"])

    async def token(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        if self.queued["/api/v1/access_token"]:
            return self.queued["/api/v1/access_token"].pop(0)()
        if seen.headers.get("Authorization") != basic(CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        if seen.form.get("grant_type") == "password":
            if (seen.form.get("username"), seen.form.get("password")) != (USERNAME, PASSWORD):
                return web.json_response(fixture("invalid_grant.json"))
            answer = fixture("user_token.json")
        else:
            answer = fixture("app_token.json")
        token = answer["access_token"].rsplit("-", 1)[0] + f"-{len(self.issued) + 1}"
        self.issued.append(token)
        self.valid.add(token)
        return web.json_response({**answer, "access_token": token})

    async def comment(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        bearer = seen.headers.get("Authorization", "").removeprefix("bearer ")
        if not bearer.startswith("user-token") or bearer not in self.valid:
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        if self.queued["/api/comment"]:
            return self.queued["/api/comment"].pop(0)()
        return web.json_response(fixture("comment_created.json"))


@pytest.fixture
def fake() -> FakeReddit:
    return FakeReddit()


@pytest.fixture
async def server(aiohttp_server: Any, fake: FakeReddit) -> Any:
    return await aiohttp_server(fake.app())


def source(server: Any, **keys: Any) -> dict[str, Any]:
    return {"id": "reddit-acme", "kind": "reddit", "base_url": str(server.make_url("")),
            "oauth_url": str(server.make_url("/oauth")), **keys}


def oauth_keys(**extra: Any) -> dict[str, Any]:
    return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **extra}


@pytest.fixture
async def connect(server: Any) -> AsyncIterator[Callable[..., RedditConnector]]:
    made: list[RedditConnector] = []

    def make(**keys: Any) -> RedditConnector:
        connector = RedditConnector(RedditSource.model_validate(source(server, **keys)))
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.close()


def with_new_post(page: dict[str, Any]) -> dict[str, Any]:
    """Page one a few minutes later: a new post on top of the ones already seen."""
    newer = copy.deepcopy(page)
    post = copy.deepcopy(newer["data"]["children"][0])
    post["data"].update(name="t3_1p4k0a3", id="1p4k0a3", author="burak_o",
                        title="Acme support is fast today", selftext="Got an answer in 5 min.",
                        permalink="/r/Turkey/comments/1p4k0a3/acme_support_is_fast_today/",
                        created_utc=at(6, 58).timestamp())
    newer["data"]["children"].insert(0, post)
    return newer


def search_pages(fake: FakeReddit) -> None:
    fake.pages["/search"] = {None: fixture("search_page1.json"),
                             "t3_1p4k0a0": fixture("search_page2.json")}


async def test_search_walks_pages_then_returns_only_new_posts(
        fake: FakeReddit, connect: Any) -> None:
    search_pages(fake)
    connector = connect(query="acme", user_agent=AGENT)
    first = await connector.fetch(None, NOW)

    assert [i.external_id for i in first.items] == ["t3_1p4jz99", "t3_1p4k0a1", "t3_1p4k0a2"]
    post = first.items[-1]
    assert post.text == ("Acme checkout adds fees?\n\nAcme's \"50% off\" banner says "
                         "<50% & free shipping> but checkout adds fees.")
    assert post.author.handle == "deniz_k" and post.channel == "reddit"
    assert post.url == "https://www.reddit.com/r/Turkey/comments/1p4k0a2/acme_checkout_adds_fees/"
    assert post.created_at == at(6, 50)
    assert (post.thread, post.in_reply_to) == ("t3_1p4k0a2", None)
    assert first.items[1].text == "Acme kettle still going after 10 years"  # a link post
    no_date, no_name = first.rejected
    assert no_date.external_id == "t3_1p4k0ax" and "created_utc" in no_date.reason
    assert "broken_client" in no_date.payload
    assert no_name.external_id is None and "name is missing" in no_name.reason
    assert "nameless" in no_name.payload
    assert [(s.path, s.query.get("after")) for s in fake.seen] == [
        ("/search.json", None), ("/search.json", "t3_1p4k0a0")]
    assert all(s.query["q"] == "acme" and s.query["sort"] == "new" for s in fake.seen)
    assert {s.headers["User-Agent"] for s in fake.seen} == {AGENT}

    fake.pages["/search"][None] = with_new_post(fixture("search_page1.json"))
    second = await connector.fetch(first.cursor, NOW + timedelta(minutes=5))
    assert [(i.external_id, i.author.handle) for i in second.items] == [("t3_1p4k0a3", "burak_o")]
    assert second.rejected == []  # the malformed posts were recorded once
    assert len(fake.seen) == 3 and "after" not in fake.seen[-1].query  # stopped on page one


async def test_a_post_search_indexes_late_is_still_picked_up(
        fake: FakeReddit, connect: Any) -> None:
    search_pages(fake)
    connector = connect(query="acme")
    first = await connector.fetch(None, NOW)
    late = with_new_post(fixture("search_page1.json"))
    late["data"]["children"][0]["data"]["created_utc"] = at(6, 45).timestamp()
    late["data"]["children"].insert(1, late["data"]["children"].pop(0))  # sorted by date
    fake.pages["/search"][None] = late
    second = await connector.fetch(first.cursor, NOW + timedelta(minutes=5))
    assert [(i.external_id, i.created_at) for i in second.items] == [("t3_1p4k0a3", at(6, 45))]


def one_post_pages(count: int) -> dict[str | None, Any]:
    """`count` pages of one post each, an hour apart, chained by `after`."""
    template = fixture("search_page2.json")["data"]["children"][0]
    pages: dict[str | None, Any] = {}
    after = None
    for n in range(count):
        post = copy.deepcopy(template)
        name = f"t3_1p4m{n:03d}"
        post["data"].update(name=name, id=name[3:], title=f"Acme question {n}", selftext="",
                            created_utc=(at(6, 59) - timedelta(hours=n)).timestamp())
        doc = fixture("empty_listing.json")
        doc["data"].update(children=[post], after=name if n < count - 1 else None)
        pages[after] = doc
        after = name
    return pages


async def test_a_walk_cut_by_the_page_cap_resumes_next_poll(
        fake: FakeReddit, connect: Any) -> None:
    fake.pages["/search"] = one_post_pages(13)
    connector = connect(query="acme")
    first = await connector.fetch(None, NOW)
    assert [i.text for i in first.items][-1] == "Acme question 0"
    assert len(first.items) == 10 and len(fake.seen) == 10
    second = await connector.fetch(first.cursor, NOW + timedelta(minutes=5))
    assert sorted(i.text for i in second.items) == [f"Acme question {n}" for n in (10, 11, 12)]
    assert [s.query.get("after") for s in fake.seen[10:]] == [
        "t3_1p4m009", "t3_1p4m010", "t3_1p4m011",  # the rest of the first walk
        None, "t3_1p4m000"]  # then the top, down to the newest post already seen


async def test_subreddit_posts_and_comments_carry_parent_and_thread(
        fake: FakeReddit, connect: Any) -> None:
    fake.pages["/r/acme/new"] = {None: fixture("subreddit_new.json")}
    fake.pages["/r/acme/comments"] = {None: fixture("subreddit_comments.json")}
    batch = await connect(subreddits=["r/acme"]).fetch(None, NOW)

    by_id = {i.external_id: i for i in batch.items}
    assert list(by_id) == ["t3_1p4ab10", "t1_nq2b7c1", "t1_nq2b7c2"]
    post, comment, brand = by_id.values()
    assert (post.thread, post.in_reply_to) == ("t3_1p4ab10", None)
    assert post.text == "Siparişim nerede?\n\nOrder 4471 says delivered but nothing arrived."
    assert (comment.thread, comment.in_reply_to) == ("t3_1p4ab10", "t3_1p4ab10")
    assert comment.text == "Same here, mine is 3 days late & no answer from support."
    assert comment.url == ("https://www.reddit.com/r/acme/comments/1p4ab10/siparisim_nerede/"
                           "nq2b7c1/")
    assert brand.author.handle == "Acme_Support" and brand.created_at == at(6, 55)
    assert [s.path for s in fake.seen] == ["/r/acme/new.json", "/r/acme/comments.json"]
    assert fake.seen[0].headers["User-Agent"] == \
        "server:listener:0.1 (self-hosted social listening)"


async def test_empty_listing_then_a_first_post(fake: FakeReddit, connect: Any) -> None:
    connector = connect(query="acme")
    empty = await connector.fetch(None, NOW)
    assert empty.items == [] and empty.rejected == [] and empty.cursor
    fake.pages["/search"] = {None: fixture("search_page1.json")}
    later = await connector.fetch(empty.cursor, NOW + timedelta(minutes=5))
    assert [i.external_id for i in later.items] == ["t3_1p4k0a1", "t3_1p4k0a2"]


async def test_used_up_rate_limit_window_waits_then_resumes_where_it_stopped(
        fake: FakeReddit, connect: Any) -> None:
    search_pages(fake)
    fake.rate = {"x-ratelimit-used": "100", "x-ratelimit-remaining": "0.0",
                 "x-ratelimit-reset": "120"}
    connector = connect(query="acme")
    first = await connector.fetch(None, NOW)
    assert [i.external_id for i in first.items] == ["t3_1p4k0a1", "t3_1p4k0a2"]
    assert first.not_before == NOW + timedelta(seconds=120)
    assert len(fake.seen) == 1  # page two waits for the next window
    assert connector.status(NOW)["read_budget"]["remaining"] == 0

    fake.rate = {"x-ratelimit-remaining": "95.0", "x-ratelimit-reset": "480"}
    later = NOW + timedelta(seconds=121)
    second = await connector.fetch(first.cursor, later)
    assert [i.external_id for i in second.items] == ["t3_1p4jz99"]
    assert [s.query.get("after") for s in fake.seen[1:]] == ["t3_1p4k0a0", None]
    assert second.not_before is None
    assert connector.status(later)["read_budget"]["remaining"] == 95


async def test_429_waits_for_retry_after_or_the_reset_header(
        fake: FakeReddit, connect: Any) -> None:
    search_pages(fake)
    fake.queue("/search", 429, "<h1>Too Many Requests</h1>", "text/html", **{"Retry-After": "30"})
    fake.queue("/search", 429, {"message": "Too Many Requests", "error": 429},
               **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "42"})
    connector = connect(query="acme")
    with pytest.raises(RateLimited) as by_retry_after:
        await connector.fetch(None, NOW)
    with pytest.raises(RateLimited) as by_reset:
        await connector.fetch(None, NOW)
    assert (by_retry_after.value.retry_after, by_reset.value.retry_after) == (30, 42)
    batch = await connector.fetch(None, NOW + timedelta(seconds=43))
    assert len(batch.items) == 3


@pytest.mark.parametrize("status,body,content_type,words", [
    (503, "<h1>503 Service Unavailable</h1>", "text/html", "HTTP 503"),
    (200, (FIXTURES / "blocked.html").read_text(), "text/html", "expected JSON"),
    (200, b'{"kind": "Listing", "data": {"children": [\xff\xfe]}}', "application/json",
     "malformed JSON"),
    (200, b'{"kind": "Listing", "data": {"children": [', "application/json", "malformed JSON"),
    (200, {"message": "Internal Server Error", "error": 500}, "application/json",
     "expected a Reddit Listing"),
])
async def test_failures_and_bodies_that_are_not_a_listing_are_source_errors(
        fake: FakeReddit, connect: Any, status: int, body: Any, content_type: str,
        words: str) -> None:
    fake.queue("/search", status, body, content_type)
    with pytest.raises(SourceError, match=words) as caught:
        await connect(query="acme").fetch(None, NOW)
    assert type(caught.value) is SourceError


async def test_refused_public_listing_says_to_set_oauth_keys(
        fake: FakeReddit, connect: Any) -> None:
    fake.queue("/search", 403, (FIXTURES / "blocked.html").read_text(), "text/html")
    with pytest.raises(AuthFailed, match="public listing") as caught:
        await connect(query="acme").fetch(None, NOW)
    assert "client_id and client_secret" in str(caught.value)


async def test_private_or_unknown_subreddits_are_named(fake: FakeReddit, connect: Any) -> None:
    fake.queue("/r/secret/new", 403, fixture("private_subreddit.json"))
    with pytest.raises(AuthFailed, match=r"r/secret is closed to this app \(private\)"):
        await connect(subreddits=["secret"]).fetch(None, NOW)
    fake.queue("/r/nosuch/new", 302, Location="/subreddits/search.json?q=nosuch")
    with pytest.raises(SourceError, match="r/nosuch does not exist"):
        await connect(subreddits=["nosuch"]).fetch(None, NOW)


async def test_oauth_token_is_fetched_once_reused_and_renewed_when_expired(
        fake: FakeReddit, connect: Any) -> None:
    search_pages(fake)
    connector = connect(query="acme", **oauth_keys())
    first = await connector.fetch(None, NOW)
    await connector.fetch(first.cursor, NOW + timedelta(minutes=5))
    [token_call] = fake.token_requests()
    assert token_call.form == {"grant_type": "client_credentials"}
    assert token_call.headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)
    listing_calls = fake.requests("/oauth")
    assert [s.path for s in listing_calls] == ["/oauth/search"] * 3
    assert {s.headers["Authorization"] for s in listing_calls} == {"bearer app-token-1"}
    assert {s.headers["User-Agent"] for s in fake.seen} == {
        "server:listener:0.1 (self-hosted social listening)"}
    assert len(first.items) == 3

    await connector.fetch(first.cursor, NOW + timedelta(days=1))  # 86400s token is stale
    assert fake.issued == ["app-token-1", "app-token-2"]
    assert fake.seen[-1].headers["Authorization"] == "bearer app-token-2"


async def test_refused_token_is_renewed_once_then_auth_fails(
        fake: FakeReddit, connect: Any) -> None:
    search_pages(fake)
    connector = connect(query="acme", **oauth_keys())
    first = await connector.fetch(None, NOW)
    fake.valid.clear()  # Reddit revoked the token early
    again = await connector.fetch(first.cursor, NOW + timedelta(minutes=5))
    assert again.items == [] and fake.issued == ["app-token-1", "app-token-2"]

    fake.queue("/search", 401, {"message": "Unauthorized", "error": 401})
    fake.queue("/search", 401, {"message": "Unauthorized", "error": 401})
    with pytest.raises(AuthFailed, match="check client_id and client_secret") as caught:
        await connector.fetch(first.cursor, NOW + timedelta(minutes=10))
    assert len(fake.issued) == 3  # one renewal, not a loop
    assert CLIENT_SECRET not in str(caught.value)


async def test_wrong_app_secret_names_the_keys_never_the_value(
        fake: FakeReddit, connect: Any) -> None:
    connector = connect(query="acme", client_id=CLIENT_ID, client_secret="not-the-secret")
    with pytest.raises(AuthFailed, match="check client_id and client_secret") as caught:
        await connector.fetch(None, NOW)
    assert "not-the-secret" not in str(caught.value)
    assert "not-the-secret" not in repr(connector) + repr(connector.config)
    assert fake.requests("/oauth") == []


# The brand's own comments (native replies) ---------------------------------------------


def with_new_brand_comment(listing: dict[str, Any]) -> dict[str, Any]:
    """The brand's comments listing a few minutes later: one more answer on top."""
    newer = copy.deepcopy(listing)
    comment = copy.deepcopy(newer["data"]["children"][0])
    comment["data"].update(name="t1_nq2d003", id="nq2d003", parent_id="t3_1p4k0a1",
                           link_id="t3_1p4k0a1", body="Glad it still works!",
                           permalink="/r/BuyItForLife/comments/1p4k0a1/x/nq2d003/",
                           created_utc=at(6, 59).timestamp())
    newer["data"]["children"].insert(0, comment)
    return newer


async def test_brand_accounts_comments_come_back_as_the_brands(
        fake: FakeReddit, connect: Any) -> None:
    search_pages(fake)
    fake.pages[BRAND_COMMENTS] = {None: fixture("user_comments.json")}
    connector = connect(query="acme", username=USERNAME)
    connector.watch_brand(["Acme_Support", "u/acme_help", "acme@mastodon.social"])
    first = await connector.fetch(None, NOW)

    assert [(s.path, s.query.get("sort"), s.query["raw_json"]) for s in fake.seen] == [
        ("/search.json", "new", "1"), ("/search.json", "new", "1"),
        ("/user/acme_support/comments.json", "new", "1"),
        ("/user/acme_help/comments.json", "new", "1")]  # acme_support is read once
    by_id = {i.external_id: i for i in first.items}
    assert set(by_id) == {"t3_1p4jz99", "t3_1p4k0a1", "t3_1p4k0a2", "t1_nq2d001",
                          "t1_nq2d002"}  # not yesterday's comment: past the backfill
    answer = by_id["t1_nq2d002"]
    assert answer.by_brand and answer.author.handle == "Acme_Support"
    assert (answer.in_reply_to, answer.thread) == ("t3_1p4k0a2", "t3_1p4k0a2")
    assert answer.text == ("Hi! Those are shipping fees, not a surcharge. DM us your order "
                           "number & we'll refund them.")
    assert answer.url == ("https://www.reddit.com/r/Turkey/comments/1p4k0a2/"
                          "acme_checkout_adds_fees/nq2d002/")
    assert answer.created_at == at(6, 58) and answer.channel == "reddit"
    assert (by_id["t1_nq2d001"].in_reply_to, by_id["t1_nq2d001"].thread) == (
        "t1_nq2cz01", "t3_1p4jz99")
    assert not any(by_id[k].by_brand for k in ("t3_1p4jz99", "t3_1p4k0a1", "t3_1p4k0a2"))
    assert set(json.loads(first.cursor)["listings"]) == {
        "search:acme", "u/acme_support/comments", "u/acme_help/comments"}
    assert connector.status(NOW)["brand_replies"] == {
        "watched": True, "accounts": ["acme_support", "acme_help"]}

    fake.pages[BRAND_COMMENTS][None] = with_new_brand_comment(fixture("user_comments.json"))
    second = await connector.fetch(first.cursor, NOW + timedelta(minutes=5))
    assert [(i.external_id, i.by_brand, i.in_reply_to) for i in second.items] == [
        ("t1_nq2d003", True, "t3_1p4k0a1")]
    brand_calls = fake.requests(BRAND_COMMENTS)
    assert len(brand_calls) == 2 and "after" not in brand_calls[-1].query  # stopped on top


async def test_a_brand_post_in_a_watched_subreddit_is_the_brands_even_if_unlisted(
        fake: FakeReddit, connect: Any) -> None:
    fake.pages["/r/acme/comments"] = {None: fixture("subreddit_comments.json")}
    batch = await connect(subreddits=["acme"], username=USERNAME).fetch(None, NOW)
    by_brand = {i.external_id: i.by_brand for i in batch.items}
    assert by_brand == {"t1_nq2b7c1": False, "t1_nq2b7c2": True}  # by Acme_Support


async def test_without_username_or_brand_accounts_no_user_is_read(
        fake: FakeReddit, connect: Any) -> None:
    search_pages(fake)
    fake.pages[BRAND_COMMENTS] = {None: fixture("user_comments.json")}
    connector = connect(query="acme")
    connector.watch_brand([])
    batch = await connector.fetch(None, NOW)
    assert {s.path for s in fake.seen} == {"/search.json"}
    assert not any(i.by_brand for i in batch.items)
    assert set(json.loads(batch.cursor)["listings"]) == {"search:acme"}
    assert connector.status(NOW)["brand_replies"] == {"watched": False, "accounts": []}


async def test_brand_comments_through_oauth_wait_for_the_read_budget(
        fake: FakeReddit, connect: Any) -> None:
    fake.pages["/search"] = {None: fixture("search_page2.json")}
    fake.pages[BRAND_COMMENTS] = {None: fixture("user_comments.json")}
    fake.rate = {"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "120"}
    connector = connect(query="acme", username=USERNAME, **oauth_keys())
    first = await connector.fetch(None, NOW)
    assert [s.path for s in fake.requests()] == ["/oauth/search"]  # budget used up
    assert first.not_before == NOW + timedelta(seconds=120)

    fake.rate = {"x-ratelimit-remaining": "99.0", "x-ratelimit-reset": "480"}
    second = await connector.fetch(first.cursor, NOW + timedelta(seconds=121))
    [brand_call] = fake.requests(f"/oauth{BRAND_COMMENTS}")
    assert brand_call.headers["Authorization"] == "bearer app-token-1"
    assert brand_call.query["sort"] == "new"
    assert {i.external_id for i in second.items if i.by_brand} == {"t1_nq2d001", "t1_nq2d002"}


async def test_an_unknown_brand_account_is_named(fake: FakeReddit, connect: Any) -> None:
    fake.queue("/user/acme_destek/comments", 404, {"message": "Not Found", "error": 404})
    connector = connect(query="acme")
    connector.watch_brand(["acme_destek"])
    with pytest.raises(SourceError, match="u/acme_destek does not exist") as caught:
        await connector.fetch(None, NOW)
    assert "brand_accounts.reddit" in str(caught.value)


def target() -> ReplyTarget:
    return ReplyTarget("t3_1p4k0a2", "deniz_k",
                       "https://www.reddit.com/r/Turkey/comments/1p4k0a2/acme_checkout_adds_fees/",
                       "t3_1p4k0a2")


def replier(connect: Any) -> RedditConnector:
    return connect(query="acme", send_replies=True, username=USERNAME, password=PASSWORD,
                   **oauth_keys())


async def test_reply_logs_in_as_the_user_and_posts_a_comment(
        fake: FakeReddit, connect: Any) -> None:
    connector = replier(connect)
    assert connector.missing_reply_credentials() == []
    sent = await connector.reply(target(), "Sorry about that! Could you DM us your order number?")
    assert sent.external_id == "t1_nq2c001"
    assert sent.url == ("https://www.reddit.com/r/Turkey/comments/1p4k0a2/"
                        "acme_checkout_adds_fees/nq2c001/")
    [login] = fake.token_requests()
    assert login.form == {"grant_type": "password", "username": USERNAME, "password": PASSWORD}
    assert login.headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)
    [post] = fake.requests("/oauth/api/comment")
    assert post.form == {"thing_id": "t3_1p4k0a2", "api_type": "json",
                         "text": "Sorry about that! Could you DM us your order number?"}
    assert post.headers["Authorization"] == "bearer user-token-1"
    assert post.headers["User-Agent"] == "server:listener:0.1 (by /u/acme_support)"
    await connector.reply(target(), "Second answer")
    assert len(fake.token_requests()) == 1  # the login is reused


async def test_reply_credentials_name_what_is_missing(server: Any) -> None:
    def missing(**keys: Any) -> list[str]:
        return RedditConnector(RedditSource.model_validate(
            source(server, query="acme", **keys))).missing_reply_credentials()

    assert missing() == ["client_id", "client_secret", "username", "password"]
    assert missing(**oauth_keys()) == ["username", "password"]
    assert missing(**oauth_keys(username=USERNAME, password="")) == ["password"]


@pytest.mark.parametrize("path,status,body,expected,words,retry", [
    ("/api/comment", 200, fixture("comment_ratelimit.json"), 429, "Take a break", 299.6),
    ("/api/comment", 200, {"json": {"errors": [["RATELIMIT", "you are doing that too much. "
                                                "try again in 9 minutes.", "ratelimit"]]}},
     429, "too much", 540),
    ("/api/comment", 200, fixture("comment_locked.json"), 422, "THREAD_LOCKED", None),
    ("/api/comment", 403, {"message": "Forbidden", "error": 403}, 403, "check username", None),
    ("/api/comment", 500, "<h1>500</h1>", 500, "HTTP 500", None),
    ("/api/v1/access_token", 200, fixture("invalid_grant.json"), 401, "username and password",
     None),
])
async def test_reply_refusals_say_why_and_when_to_retry(
        fake: FakeReddit, connect: Any, path: str, status: int, body: Any, expected: int,
        words: str, retry: float | None) -> None:
    fake.queue(path, status, body)
    with pytest.raises(ReplyRefused, match=words) as caught:
        await replier(connect).reply(target(), "Hello")
    assert (caught.value.status, caught.value.retry_after) == (expected, retry)
    assert PASSWORD not in caught.value.message and CLIENT_SECRET not in caught.value.message


async def test_reply_to_something_that_is_not_a_reddit_id_sends_nothing(
        fake: FakeReddit, connect: Any) -> None:
    with pytest.raises(ReplyRefused) as caught:
        await replier(connect).reply(ReplyTarget("tw-1234", "ali"), "Hello")
    assert caught.value.status == 422 and fake.seen == []


def test_config_rejects_half_an_app_and_nothing_to_watch() -> None:
    base = {"id": "r", "kind": "reddit"}
    with pytest.raises(ValueError, match="set query, subreddits, or both"):
        RedditSource.model_validate(base)
    with pytest.raises(ValueError, match="client_id and client_secret go together"):
        RedditSource.model_validate({**base, "query": "acme", "client_id": CLIENT_ID})
    with pytest.raises(ValueError, match="not a subreddit name"):
        RedditSource.model_validate({**base, "subreddits": ["acme/../x"]})
    config = RedditSource.model_validate({**base, "subreddits": ["r/Acme", "/r/acme/", "b_c"]})
    assert config.subreddits == ["Acme", "b_c"] and config.channel == "reddit"


# End to end ------------------------------------------------------------------------------


async def start(db_url: str, clock: Any, enricher: Any, server: Any,
                brand: tuple[str, ...] = ("acme_support",), **keys: Any) -> Any:
    config = make_config(
        db_url,
        sources=[source(server, query="acme", subreddits=["acme"], interval="60s", **keys)],
        brand_accounts={**BASE_CONFIG["brand_accounts"], "reddit": list(brand)},
    )
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    return services


async def stored(services: Any) -> dict[str, Mention]:
    async with services.store.read() as session:
        return {m.external_id: m for m in await session.scalars(select(Mention))}


async def stop(services: Any) -> None:
    await services.store.close()
    await services.coordinator.close()


async def test_poll_stores_mentions_and_a_brand_comment_answers_the_customer(
        db_url: str, clock: Any, enricher: Any, fake: FakeReddit, server: Any) -> None:
    search_pages(fake)
    fake.pages["/r/acme/new"] = {None: fixture("subreddit_new.json")}
    services = await start(db_url, clock, enricher, server)
    assert await services.coordinator.poll("reddit-acme") == "ok"
    rows = await stored(services)
    assert set(rows) == {"t3_1p4jz99", "t3_1p4k0a1", "t3_1p4k0a2", "t3_1p4ab10"}
    customer = rows["t3_1p4ab10"]
    assert customer.channel == "reddit" and customer.status in ("new", "assigned")
    assert customer.deadline_at is not None and customer.thread == "t3_1p4ab10"
    assert "<50% & free shipping>" in rows["t3_1p4k0a2"].text
    async with services.store.read() as session:
        rejected = list(await session.scalars(select(RejectedItem)))
    assert sorted((r.source, r.external_id or "") for r in rejected) == [
        ("reddit-acme", ""), ("reddit-acme", "t3_1p4k0ax")]

    fake.pages["/r/acme/comments"] = {None: fixture("subreddit_comments.json")}
    clock.advance(timedelta(minutes=2))
    assert await services.coordinator.poll("reddit-acme") == "ok"
    rows = await stored(services)
    customer, brand, other = rows["t3_1p4ab10"], rows["t1_nq2b7c2"], rows["t1_nq2b7c1"]
    assert customer.status == "responded"
    assert customer.first_response_at == at(6, 55)
    assert customer.response_external_id == "t1_nq2b7c2"
    assert customer.response_url == ("https://www.reddit.com/r/acme/comments/1p4ab10/"
                                     "siparisim_nerede/nq2b7c2/")
    assert brand.status == "ignored" and brand.in_reply_to == "t3_1p4ab10"
    assert other.status in ("new", "assigned") and other.first_response_at is None
    assert len(rows) == 6
    await stop(services)


async def test_reply_sent_from_the_api_posts_a_comment_and_stops_the_clock(
        db_url: str, clock: Any, enricher: Any, fake: FakeReddit, server: Any,
        aiohttp_client: Any) -> None:
    search_pages(fake)
    services = await start(db_url, clock, enricher, server, send_replies=True,
                           username=USERNAME, password=PASSWORD, **oauth_keys())
    await services.coordinator.poll("reddit-acme")
    mention_id = (await stored(services))["t3_1p4k0a2"].id
    client = await aiohttp_client(init_app(services, background=False))
    url = f"/api/v1/mentions/{mention_id}/reply"

    fake.queue("/api/comment", 200, fixture("comment_ratelimit.json"))
    limited = await client.post(url, json={"text": "Sorry!", "send": True}, headers=AUTH)
    assert limited.status == 429 and limited.headers["Retry-After"] == "300"
    assert (await stored(services))["t3_1p4k0a2"].status != "responded"

    sent = await client.post(url, json={"text": "Sorry! Please DM us.", "send": True},
                             headers=AUTH)
    assert sent.status == 200
    assert (await sent.json())["reply"]["id"] == "t1_nq2c001"
    mention = (await stored(services))["t3_1p4k0a2"]
    assert mention.status == "responded" and mention.response_external_id == "t1_nq2c001"
    assert mention.response_url.endswith("/acme_checkout_adds_fees/nq2c001/")
    assert fake.requests("/oauth/api/comment")[-1].form["thing_id"] == "t3_1p4k0a2"
    await stop(services)


@pytest.mark.parametrize("brand,keys", [(("acme_support",), {}),
                                        ((), {"username": USERNAME})],
                         ids=["brand-accounts", "username-only"])
async def test_a_comment_the_brand_posts_on_reddit_itself_stops_the_clock(
        db_url: str, clock: Any, enricher: Any, fake: FakeReddit, server: Any,
        brand: tuple[str, ...], keys: dict[str, Any]) -> None:
    """The brand answers a post found by search, outside the watched subreddit: only its
    own comments listing shows the answer."""
    search_pages(fake)
    services = await start(db_url, clock, enricher, server, brand=brand, **keys)
    assert await services.coordinator.poll("reddit-acme") == "ok"
    customer = (await stored(services))["t3_1p4k0a2"]
    assert customer.status in ("new", "assigned") and customer.deadline_at is not None

    fake.pages[BRAND_COMMENTS] = {None: fixture("user_comments.json")}
    clock.advance(timedelta(minutes=2))
    assert await services.coordinator.poll("reddit-acme") == "ok"
    rows = await stored(services)
    customer, answer = rows["t3_1p4k0a2"], rows["t1_nq2d002"]
    assert customer.status == "responded"
    assert customer.first_response_at == at(6, 58)
    assert customer.response_external_id == "t1_nq2d002"
    assert customer.response_url == ("https://www.reddit.com/r/Turkey/comments/1p4k0a2/"
                                     "acme_checkout_adds_fees/nq2d002/")
    assert answer.status == "ignored" and answer.in_reply_to == "t3_1p4k0a2"
    assert answer.thread == "t3_1p4k0a2"
    assert answer.assignee is None and answer.deadline_at is None
    assert rows["t1_nq2d001"].status == "ignored"  # its parent is not ours: nothing answered
    assert "t1_nq0a900" not in rows  # older than the backfill window
    async with services.store.read() as session:
        events = list(await session.scalars(select(MentionEvent).where(
            MentionEvent.mention_id == answer.id)))
    assert [(e.kind, e.data["reason"]) for e in events] == [("ingested", "brand account")]
    await stop(services)


def with_crosspost(listing: dict[str, Any]) -> dict[str, Any]:
    """The subreddit's new posts plus a crosspost of the customer's post elsewhere."""
    newer = copy.deepcopy(listing)
    shared = copy.deepcopy(newer["data"]["children"][0])
    shared["data"].update(name="t3_1p4ab11", id="1p4ab11", author="reposter",
                          subreddit="acme", crosspost_parent="t3_1p4ab10",
                          crosspost_parent_list=[copy.deepcopy(shared["data"])],
                          permalink="/r/acme/comments/1p4ab11/siparisim_nerede/",
                          created_utc=at(6, 57).timestamp())
    newer["data"]["children"].insert(0, shared)
    return newer


async def test_a_crosspost_is_flagged_and_stored_as_noise(
        db_url: str, clock: Any, enricher: Any, fake: FakeReddit, server: Any,
        connect: Any) -> None:
    fake.pages["/r/acme/new"] = {None: with_crosspost(fixture("subreddit_new.json"))}
    batch = await connect(subreddits=["acme"]).fetch(None, at(7, 0))
    flags = {item.external_id: item.repost for item in batch.items}
    assert flags == {"t3_1p4ab11": True, "t3_1p4ab10": False}

    services = await start(db_url, clock, enricher, server)
    assert await services.coordinator.poll("reddit-acme") == "ok"
    rows = await stored(services)
    crosspost, original = rows["t3_1p4ab11"], rows["t3_1p4ab10"]
    assert (crosspost.status, crosspost.deadline_at, crosspost.assignee) == (
        "ignored", None, None)
    async with services.store.read() as session:
        why = await session.scalar(select(MentionEvent.data).where(
            MentionEvent.mention_id == crosspost.id, MentionEvent.kind == "ingested"))
    assert why["reason"] == "noise: repost"
    assert original.status in ("new", "assigned") and original.deadline_at is not None
    await stop(services)
