"""The X connector against a fake X API v2 on 127.0.0.1 serving recorded payloads.

The fake answers recent search only for the exact (since_id, until_id, next_token) a page
was recorded for, so a wrong cursor shows up as a failed poll, not as a silent re-read. A
page recorded with `requires` (e.g. the brand's reply, `from:acme`) is found only by a query
that asks for it; any other query gets X's empty answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from oauthlib.oauth1 import Client as OAuthClient
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header
from sqlalchemy import select

from connectors.base import (
    AuthFailed,
    RateLimited,
    RawAuthor,
    RawItem,
    ReplyRefused,
    ReplyTarget,
    SentReply,
    SourceError,
)
from connectors.twitter import TwitterConnector, TwitterSource
from listener.app import build_services, init_app, prepare_database
from listener.models import Author, Mention, MentionEvent, RejectedItem
from tests.conftest import MONDAY_10, make_config

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twitter"
BEARER = "bearer-AAAAtest9f8e7d"
WRITE_KEYS = {"consumer_key": "ck-acme-123", "consumer_secret": "cs-acme-456",
              "access_token": "9000-at-acme-789", "access_token_secret": "ats-acme-000"}
TOKEN = "b26v89c19zqg8o3fpe17vc0azmuamtyh9lrp7rx4yexdp"
USER_AGENT = "Listener-test/1.0 (+https://acme.example)"
NOW = MONDAY_10.astimezone(UTC)  # 2026-11-23 07:00 UTC
MONTH_LEFT = datetime(2026, 12, 1, tzinfo=UTC) - NOW  # 185 hours


def post(n: int) -> str:
    return f"18600000000000{n:05d}"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    requires: str | None = None  # a query without this matches nothing

    @classmethod
    def of(cls, status: int, document: Any, headers: dict[str, str] | None = None) -> Answer:
        return cls(status, json.dumps(document).encode(), headers=headers or {})

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers={
            "Content-Type": self.content_type, **self.headers})


class FakeX:
    """X API v2 as Listener uses it: recent search and creating a post."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str | None, ...], list[Answer]] = {}
        self.searches: list[dict[str, str]] = []
        self.agents: list[str] = []
        self.posts: list[tuple[dict[str, Any], str]] = []
        self.post_answers: list[Answer] = []
        self.server: Any = None

    def page(self, name: str, since_id: str | None = None, until_id: str | None = None,
             next_token: str | None = None, headers: dict[str, str] | None = None,
             requires: str | None = None) -> None:
        answer = replace(Answer.of(200, fixture(name), headers), requires=requires)
        self.answer(answer, since_id, until_id, next_token)

    def answer(self, answer: Answer, since_id: str | None = None, until_id: str | None = None,
               next_token: str | None = None) -> None:
        """Answers for one request, in order; the last one repeats."""
        self.answers.setdefault((since_id, until_id, next_token), []).append(answer)

    async def search(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.searches.append(query)
        self.agents.append(request.headers.get("User-Agent", ""))
        if request.headers.get("Authorization") != f"Bearer {BEARER}":
            return Answer.of(401, fixture("unauthorized")).response()
        key = (query.get("since_id"), query.get("until_id"), query.get("next_token"))
        queue = self.answers.get(key)
        if not queue:
            return Answer.of(400, {"title": "Invalid Request", "errors": [
                {"message": f"no recorded page for since/until/next_token {key}"}]}).response()
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if answer.requires and answer.requires not in query.get("query", ""):
            return Answer.of(200, fixture("empty")).response()
        return answer.response()

    async def create_post(self, request: web.Request) -> web.Response:
        self.posts.append((await request.json(), request.headers.get("Authorization", "")))
        answer = self.post_answers.pop(0) if self.post_answers else Answer.of(
            201, fixture("created"))
        return answer.response()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/2/tweets/search/recent", self.search)
        app.router.add_post("/2/tweets", self.create_post)
        return app


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeX:
    x = FakeX()
    x.server = await aiohttp_server(x.app())
    return x


def source(fake: FakeX, **extra: Any) -> dict[str, Any]:
    return {"id": "x-brand", "kind": "twitter", "query": "@acme -is:retweet",
            "bearer_token": BEARER, "base_url": str(fake.server.make_url("")),
            "interval": "60s", "user_agent": USER_AGENT, **extra}


@pytest.fixture
async def connect(fake: FakeX) -> AsyncIterator[Callable[..., TwitterConnector]]:
    made: list[TwitterConnector] = []

    def make(**extra: Any) -> TwitterConnector:
        made.append(TwitterConnector(TwitterSource.model_validate(source(fake, **extra))))
        return made[-1]

    yield make
    for connector in made:
        await connector.close()


def ids(items: list[RawItem]) -> list[str]:
    return [item.external_id for item in items]


def first_poll_pages(fake: FakeX) -> None:
    fake.page("page1")
    fake.page("page2", next_token=TOKEN)


# --- reading ---------------------------------------------------------------------------


async def test_first_poll_walks_both_pages_and_the_next_sends_the_newest_id(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    first_poll_pages(fake)
    fake.page("newer", since_id=post(105))
    connector = connect()

    batch = await connector.fetch(None, NOW)

    assert ids(batch.items) == [post(n) for n in (101, 102, 103, 104, 105)]
    by_id = {item.external_id: item for item in batch.items}
    assert by_id[post(105)] == RawItem(
        external_id=post(105), text="@acme siparişim 3 gündür kargoda, ne zaman gelir?",
        created_at=datetime(2026, 11, 23, 6, 50, 12, tzinfo=UTC), channel="twitter",
        author=RawAuthor("deniz_k", "Deniz Kaya", followers=812),
        url=f"https://x.com/deniz_k/status/{post(105)}", lang="tr", thread=post(105))
    assert by_id[post(104)].text == \
        "@acme price went from <$90 to >$100 & still no tracking number"
    reply = by_id[post(103)]
    assert (reply.lang, reply.in_reply_to, reply.thread) == (None, post(99), post(99))
    assert reply.author == RawAuthor("zeynep_a", "Zeynep Arslan", followers=1290)
    first, second = fake.searches
    assert first == {
        "query": "@acme -is:retweet", "max_results": "100", "expansions": "author_id",
        "tweet.fields": "created_at,lang,conversation_id,referenced_tweets,note_tweet",
        "user.fields": "public_metrics,username,name",
        "start_time": "2026-11-22T07:00:00Z",  # the 1-day backfill, not X's 7 days
    }
    assert second["next_token"] == TOKEN and "since_id" not in second
    assert set(fake.agents) == {USER_AGENT}

    later = await connector.fetch(batch.cursor, NOW + timedelta(minutes=5))

    assert ids(later.items) == [post(n) for n in (106, 107, 108, 109, 110)]
    assert fake.searches[-1]["since_id"] == post(105)
    assert "start_time" not in fake.searches[-1]
    assert later.items[2].in_reply_to == post(105) and later.items[2].thread == post(105)


async def test_an_empty_result_keeps_the_cursor(fake: FakeX,
                                                connect: Callable[..., TwitterConnector]) -> None:
    first_poll_pages(fake)
    fake.page("empty", since_id=post(105))
    connector = connect()
    cursor = (await connector.fetch(None, NOW)).cursor
    for minutes in (1, 2):
        batch = await connector.fetch(cursor, NOW + timedelta(minutes=minutes))
        assert batch.items == [] and batch.rejected == []
        cursor = batch.cursor
    assert [s["since_id"] for s in fake.searches[2:]] == [post(105), post(105)]


async def test_an_empty_first_poll_stays_inside_the_backfill_window(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    fake.page("empty")
    connector = connect()
    batch = await connector.fetch(None, NOW)
    await connector.fetch(batch.cursor, NOW + timedelta(hours=1))
    assert [s["start_time"] for s in fake.searches] == ["2026-11-22T07:00:00Z"] * 2


async def test_429_waits_for_the_reset_then_polls_again(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    reset = str(int(NOW.timestamp()) + 900)
    fake.answer(Answer.of(429, fixture("too_many_requests"),
                          {"x-rate-limit-reset": reset, "x-rate-limit-remaining": "0"}))
    first_poll_pages(fake)
    connector = connect(channel="x-support")
    with pytest.raises(RateLimited) as limited:
        await connector.fetch(None, NOW)
    assert limited.value.retry_after == 900
    batch = await connector.fetch(None, NOW + timedelta(seconds=901))
    assert len(batch.items) == 5
    assert {item.channel for item in batch.items} == {"x-support"}


async def test_an_unreachable_api_is_a_source_error() -> None:
    config = TwitterSource.model_validate({
        "id": "x-brand", "kind": "twitter", "query": "acme", "bearer_token": BEARER,
        "base_url": "http://127.0.0.1:1"})
    connector = TwitterConnector(config)
    with pytest.raises(SourceError, match="ClientConnectorError"):
        await connector.fetch(None, NOW)
    await connector.close()


async def test_a_used_up_window_stops_paging_and_the_gap_is_read_next(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    reset = int(NOW.timestamp()) + 600
    fake.page("page1", headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    fake.page("page2", until_id=post(103))
    fake.page("newer", since_id=post(105))
    connector = connect()

    batch = await connector.fetch(None, NOW)

    assert ids(batch.items) == [post(103), post(104), post(105)]
    assert batch.not_before == datetime.fromtimestamp(reset, UTC)
    assert len(fake.searches) == 1  # page 2 would have been a 429
    gap = await connector.fetch(batch.cursor, NOW + timedelta(minutes=11))
    assert ids(gap.items) == [post(101), post(102)]
    assert fake.searches[-1]["until_id"] == post(103)
    assert fake.searches[-1]["start_time"] == "2026-11-22T07:00:00Z"
    after = await connector.fetch(gap.cursor, NOW + timedelta(minutes=12))
    assert ids(after.items)[0] == post(106)
    assert "until_id" not in fake.searches[-1]


async def test_a_later_page_failing_keeps_the_first_page(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    fake.page("page1")
    fake.answer(Answer.of(429, fixture("too_many_requests"),
                          {"x-rate-limit-reset": str(int(NOW.timestamp()) + 300)}),
                next_token=TOKEN)
    fake.page("page2", until_id=post(103))
    connector = connect()
    batch = await connector.fetch(None, NOW)
    assert ids(batch.items) == [post(103), post(104), post(105)]
    assert batch.not_before == NOW + timedelta(seconds=300)
    gap = await connector.fetch(batch.cursor, NOW + timedelta(minutes=6))
    assert ids(gap.items) == [post(101), post(102)]


@pytest.mark.parametrize("answer,words", [
    (Answer.of(503, fixture("service_unavailable")), "HTTP 503"),
    (Answer(502, b"<html><body>502 Bad Gateway</body></html>", "text/html"), "HTTP 502"),
    (Answer(200, b"<html>captive portal</html>", "text/html"), "expected JSON"),
    (Answer(200, b'{"data": [{"id": "1", "text": "\xff\xfe"}]}'), "malformed JSON"),
    (Answer(200, b'{"data": [{"id": "1"'), "malformed JSON"),
    (Answer.of(200, [fixture("page2")]), "not a search result"),
    (Answer.of(200, {"errors": [{"title": "Invalid Request", "detail": "bad query"}]}),
     "bad query"),
])
async def test_server_errors_and_unreadable_bodies_are_source_errors(
        fake: FakeX, connect: Callable[..., TwitterConnector], answer: Answer,
        words: str) -> None:
    fake.answer(answer)
    with pytest.raises(SourceError) as failed:
        await connect().fetch(None, NOW)
    assert type(failed.value) is SourceError
    assert words in str(failed.value)


@pytest.mark.parametrize("answer,words", [
    (None, "401"),  # the fake's own check of the Bearer header
    (Answer.of(403, fixture("forbidden_search")), "attached to a Project"),
    (Answer(401, b"", "text/plain"), "401"),
])
async def test_refused_credentials_name_the_key_never_the_value(
        fake: FakeX, connect: Callable[..., TwitterConnector], caplog: Any,
        answer: Answer | None, words: str) -> None:
    caplog.set_level(logging.DEBUG)
    if answer is not None:
        fake.answer(answer)
    wrong = "bearer-WRONG-0123456789"
    connector = connect(bearer_token=wrong if answer is None else BEARER, **WRITE_KEYS)
    with pytest.raises(AuthFailed) as refused:
        await connector.fetch(None, NOW)
    message = str(refused.value)
    assert "sources[].bearer_token" in message and words in message
    shown = message + repr(connector) + repr(connector.config) + caplog.text
    for secret in (wrong, BEARER, *WRITE_KEYS.values()):
        assert secret not in shown


async def test_malformed_posts_are_rejected_and_their_neighbours_kept(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    fake.page("malformed")
    fake.page("empty", since_id=post(205))
    batch = await connect().fetch(None, NOW)
    assert ids(batch.items) == [post(201), post(205)]
    rejected = {r.external_id: r.reason for r in batch.rejected}
    assert set(rejected) == {post(202), post(203), post(204), None}
    assert "created_at" in rejected[post(202)] and "created_at" in rejected[post(204)]
    assert "includes.users" in rejected[post(203)]
    assert "id" in rejected[None]
    assert all(r.payload.startswith("{") and len(r.payload) <= 2000 for r in batch.rejected)
    assert "since_id" not in fake.searches[-1]
    await connect().fetch(batch.cursor, NOW)  # moves past the rejected ones too
    assert fake.searches[-1]["since_id"] == post(205)


# --- the brand's own replies ------------------------------------------------------------

WITH_ACME = "(@acme -is:retweet) OR (from:acme is:reply)"


async def test_the_brands_replies_come_with_the_same_search(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    first_poll_pages(fake)
    connector = connect()
    connector.watch_brand(["@acme"])

    batch = await connector.fetch(None, NOW)

    assert [s["query"] for s in fake.searches] == [WITH_ACME, WITH_ACME]  # no extra requests
    assert len(batch.items) == 5 and not any(item.by_brand for item in batch.items)
    assert connector.status(NOW) == {"brand_replies": {"watched": True, "accounts": ["acme"]}}


async def test_several_brand_accounts_are_grouped_and_their_posts_marked(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    fake.page("brand_reply", requires="from:Acme")
    connector = connect()
    connector.watch_brand(["Acme", "acme_help", "Acme"])

    batch = await connector.fetch(None, NOW)

    # AND binds tighter than OR on X: without the inner parentheses `is:reply` would
    # only apply to the last account
    assert fake.searches[0]["query"] == \
        "(@acme -is:retweet) OR ((from:Acme OR from:acme_help) is:reply)"
    [reply] = batch.items
    assert reply.author.handle == "acme" and reply.by_brand  # X usernames ignore case
    assert reply.in_reply_to == post(105)


async def test_without_brand_accounts_the_query_is_sent_unchanged(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    fake.page("brand_reply", requires="from:acme")
    connector = connect()
    connector.watch_brand([])

    batch = await connector.fetch(None, NOW)

    assert fake.searches[0]["query"] == "@acme -is:retweet" and batch.items == []
    assert connector.status(NOW)["brand_replies"] == {"watched": False, "accounts": []}


async def test_brand_replies_can_be_switched_off(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    first_poll_pages(fake)
    connector = connect(brand_replies=False)
    connector.watch_brand(["acme"])
    await connector.fetch(None, NOW)
    assert {s["query"] for s in fake.searches} == {"@acme -is:retweet"}
    assert connector.status(NOW)["brand_replies"] == {"watched": False, "accounts": ["acme"]}


def test_a_query_too_long_for_x_with_the_brand_clause_stops_the_start() -> None:
    query = "(" + " OR ".join(f"kargo{n:03d}" for n in range(40)) + ") -is:retweet"
    config = {"id": "x-brand", "kind": "twitter", "bearer_token": BEARER}
    assert len(query) == 490
    connector = TwitterConnector(TwitterSource.model_validate({**config, "query": query}))
    with pytest.raises(ValueError) as too_long:
        connector.watch_brand(["acme"])
    assert str(too_long.value) == (
        "source 'x-brand': query with the brand's replies `(from:acme is:reply)` added is "
        "516 characters, over max_query_length 512; shorten query, or set brand_replies: "
        "false (replies made on X itself then no longer stop the SLA clock)")
    enterprise = TwitterConnector(TwitterSource.model_validate(
        {**config, "query": query, "max_query_length": 4096}))
    enterprise.watch_brand(["acme"])
    assert enterprise.query == f"({query}) OR (from:acme is:reply)"
    with pytest.raises(ValueError, match="query is 981 characters; X recent search accepts 512"):
        TwitterSource.model_validate({**config, "query": query + " " + query})


def test_a_brand_account_x_cannot_have_stops_the_start() -> None:
    connector = TwitterConnector(TwitterSource.model_validate(
        {"id": "x-brand", "kind": "twitter", "query": "acme", "bearer_token": BEARER}))
    with pytest.raises(ValueError, match=r"brand_accounts \['acme.support'\] are not X"):
        connector.watch_brand(["acme", "acme.support"])


# --- the monthly read budget -------------------------------------------------------------


async def test_read_budget_stretches_the_interval_and_survives_a_restart(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    first_poll_pages(fake)
    fake.page("newer", since_id=post(105))
    connector = connect(monthly_reads=20)

    batch = await connector.fetch(None, NOW)

    assert [s["max_results"] for s in fake.searches] == ["20", "17"]
    assert connector.status(NOW)["read_budget"] == {
        "monthly_reads": 20, "used": 5, "remaining": 15,
        "resets_at": "2026-12-01T00:00:00+00:00"}
    # 5 posts a poll: the 15 left last 3 polls, spread over the 185 hours to December
    assert connector.interval(NOW) == MONTH_LEFT / 3

    restarted = connect(monthly_reads=20)
    assert restarted.status(NOW)["read_budget"]["remaining"] is None  # cursor not read yet
    await restarted.fetch(batch.cursor, NOW)

    assert fake.searches[-1]["max_results"] == "15"
    assert restarted.status(NOW)["read_budget"]["remaining"] == 10
    assert restarted.interval(NOW) == MONTH_LEFT / 2
    unlimited = connect()
    assert unlimited.interval(NOW) is None
    assert unlimited.status(NOW) == {"brand_replies": {"watched": False, "accounts": []}}


async def test_a_large_budget_never_polls_faster_than_the_interval(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    first_poll_pages(fake)
    connector = connect(monthly_reads=1_000_000)
    await connector.fetch(None, NOW)
    assert connector.interval(NOW) == timedelta(seconds=60)


async def test_a_spent_budget_waits_for_the_next_month(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    first_poll_pages(fake)
    fake.page("newer", since_id=post(105))
    fake.page("empty", since_id=post(110))
    connector = connect(monthly_reads=10)
    cursor = (await connector.fetch(None, NOW)).cursor
    cursor = (await connector.fetch(cursor, NOW)).cursor
    assert [s["max_results"] for s in fake.searches] == ["10", "10", "10"]  # X's minimum
    assert connector.status(NOW)["read_budget"]["remaining"] == 0
    assert connector.interval(NOW) == MONTH_LEFT

    spent = await connector.fetch(cursor, NOW + timedelta(hours=1))

    assert len(fake.searches) == 3 and spent.items == []
    assert spent.cursor == cursor
    assert spent.not_before == datetime(2026, 12, 1, tzinfo=UTC)
    december = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    await connector.fetch(spent.cursor, december)
    assert fake.searches[-1]["since_id"] == post(110)
    assert connector.status(december)["read_budget"] == {
        "monthly_reads": 10, "used": 0, "remaining": 10,
        "resets_at": "2027-01-01T00:00:00+00:00"}


# --- replying ----------------------------------------------------------------------------


def target() -> ReplyTarget:
    return ReplyTarget(post(105), "deniz_k", f"https://x.com/deniz_k/status/{post(105)}",
                       post(105))


async def test_reply_posts_as_the_brand_account_with_a_valid_oauth_signature(
        fake: FakeX, connect: Callable[..., TwitterConnector]) -> None:
    connector = connect(send_replies=True, **WRITE_KEYS)
    assert connector.missing_reply_credentials() == []
    text = "@deniz_k Merhaba Deniz, kargonuz bugün dağıtımda."

    sent = await connector.reply(target(), text)

    assert sent == SentReply(post(999), f"https://x.com/i/web/status/{post(999)}")
    [(body, authorization)] = fake.posts
    assert body == {"text": text, "reply": {"in_reply_to_tweet_id": post(105)}}
    params = dict(parse_authorization_header(authorization))
    assert params["oauth_consumer_key"] == WRITE_KEYS["consumer_key"]
    assert params["oauth_token"] == WRITE_KEYS["access_token"]
    expected = OAuthClient(*WRITE_KEYS.values(), timestamp=params["oauth_timestamp"],
                           nonce=params["oauth_nonce"])
    _, headers, _ = expected.sign("https://api.twitter.com/2/tweets", "POST")
    assert dict(parse_authorization_header(headers["Authorization"]))["oauth_signature"] == \
        params["oauth_signature"]  # signed for X itself, whatever base_url says
    for secret in (WRITE_KEYS["consumer_secret"], WRITE_KEYS["access_token_secret"]):
        assert secret not in authorization


async def test_reply_needs_all_four_write_keys(fake: FakeX,
                                               connect: Callable[..., TwitterConnector]) -> None:
    connector = connect(send_replies=True, consumer_key="ck", access_token="at")
    assert connector.missing_reply_credentials() == ["consumer_secret", "access_token_secret"]
    with pytest.raises(ReplyRefused, match="consumer_secret, access_token_secret"):
        await connector.reply(target(), "hello")
    assert fake.posts == []


@pytest.mark.parametrize("answer,status,words", [
    (Answer.of(403, fixture("duplicate_reply")), 403, "duplicate content"),
    (Answer.of(401, fixture("unauthorized")), 401, "sources[].consumer_key"),
    (Answer.of(429, fixture("too_many_requests")), 429, "429"),
    (Answer(503, b"<html>over capacity</html>", "text/html"), 503, "503"),
])
async def test_reply_refusals_say_why(fake: FakeX, connect: Callable[..., TwitterConnector],
                                      answer: Answer, status: int, words: str) -> None:
    if status == 429:  # set when the test runs, not when it is collected
        answer = replace(answer, headers={"x-rate-limit-reset": str(int(time.time()) + 900)})
    fake.post_answers.append(answer)
    connector = connect(send_replies=True, **WRITE_KEYS)
    with pytest.raises(ReplyRefused) as refused:
        await connector.reply(target(), "Merhaba")
    assert refused.value.status == status and words in refused.value.message
    if status == 429:
        assert 800 < refused.value.retry_after <= 900
    else:
        assert refused.value.retry_after is None
    for secret in WRITE_KEYS.values():
        assert secret not in refused.value.message


# --- end to end: coordinator, pipeline, database ------------------------------------------


async def rows(services: Any) -> dict[str, Mention]:
    async with services.store.read() as session:
        return {m.external_id: m for m in await session.scalars(select(Mention))}


async def test_polls_store_mentions_and_a_brand_reply_stops_the_clock(
        db_url: str, clock: Any, enricher: Any, fake: FakeX) -> None:
    first_poll_pages(fake)
    fake.page("brand_reply", since_id=post(105))
    fake.page("malformed", since_id=post(106))
    config = make_config(db_url, sources=[source(fake, monthly_reads=10000)],
                         brand_accounts={"twitter": ["acme"]})
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    coordinator = services.coordinator

    assert await coordinator.poll("x-brand") == "ok"

    stored = await rows(services)
    assert sorted(stored) == [post(n) for n in (101, 102, 103, 104, 105)]
    customer = stored[post(105)]
    assert customer.channel == "twitter" and customer.status == "assigned"
    assert customer.url == f"https://x.com/deniz_k/status/{post(105)}"
    assert customer.created_at == datetime(2026, 11, 23, 6, 50, 12, tzinfo=UTC)
    assert customer.deadline_at is not None and customer.thread == post(105)
    assert stored[post(103)].in_reply_to == post(99)
    async with services.store.read() as session:
        author = await session.get(Author, customer.author_id)
    assert (author.handle, author.name, author.followers) == ("deniz_k", "Deniz Kaya", 812)
    gauge = services.metrics.registry.get_sample_value(
        "listener_source_read_budget_remaining", {"source": "x-brand"})
    assert gauge == 10000 - 5
    polled = coordinator.sources["x-brand"]
    assert polled.next_poll_at >= clock.now() + timedelta(seconds=60)

    clock.advance(timedelta(minutes=5))
    assert await coordinator.poll("x-brand") == "ok"

    stored = await rows(services)
    assert stored[post(105)].status == "responded"
    assert stored[post(105)].first_response_at == datetime(2026, 11, 23, 6, 55, tzinfo=UTC)
    assert stored[post(106)].status == "ignored" and stored[post(106)].assignee is None
    assert stored[post(104)].status == "assigned"

    clock.advance(timedelta(minutes=5))
    assert await coordinator.poll("x-brand") == "ok"

    stored = await rows(services)
    assert {post(201), post(205)} <= set(stored) and post(203) not in stored
    async with services.store.read() as session:
        rejected = list(await session.scalars(select(RejectedItem)))
    assert sorted(r.external_id or "" for r in rejected) == ["", post(202), post(203), post(204)]
    assert all(r.source == "x-brand" for r in rejected)
    await services.store.close()
    await coordinator.close()


@pytest.mark.parametrize("brand_accounts", [{"twitter": ["acme"]}, {}],
                         ids=["brand-watched", "no-brand-accounts"])
async def test_a_reply_made_on_x_itself_stops_the_clock(
        db_url: str, clock: Any, enricher: Any, fake: FakeX,
        brand_accounts: dict[str, list[str]]) -> None:
    """@acme answers Deniz on X, not through Listener: the reply does not match the query
    `@acme -is:retweet`, and only the `from:acme` clause finds it."""
    first_poll_pages(fake)
    fake.page("brand_reply", since_id=post(105), requires="from:acme")
    config = make_config(db_url, sources=[source(fake)], brand_accounts=brand_accounts)
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    coordinator = services.coordinator
    watched = bool(brand_accounts)

    assert await coordinator.poll("x-brand") == "ok"
    assert (await rows(services))[post(105)].status == "assigned"
    clock.advance(timedelta(minutes=5))
    assert await coordinator.poll("x-brand") == "ok"

    stored = await rows(services)
    sent = {s["query"] for s in fake.searches}
    assert sent == ({WITH_ACME} if watched else {"@acme -is:retweet"})
    assert coordinator.sources["x-brand"].status(clock.now())["brand_replies"] == {
        "watched": watched, "accounts": ["acme"] if watched else []}
    customer = stored[post(105)]
    if watched:
        assert customer.status == "responded"
        assert customer.first_response_at == datetime(2026, 11, 23, 6, 55, tzinfo=UTC)
        reply = stored[post(106)]
        assert (reply.status, reply.assignee, reply.in_reply_to) == ("ignored", None, post(105))
    else:
        assert customer.status == "assigned" and customer.first_response_at is None
        assert post(106) not in stored
    await services.store.close()
    await coordinator.close()


async def test_sending_a_reply_from_listener_records_the_post_on_x(
        db_url: str, clock: Any, enricher: Any, fake: FakeX, aiohttp_client: Any) -> None:
    first_poll_pages(fake)
    config = make_config(db_url, sources=[source(fake, send_replies=True, **WRITE_KEYS)])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    await services.coordinator.poll("x-brand")
    mention_id = (await rows(services))[post(105)].id
    client = await aiohttp_client(init_app(services, background=False))

    response = await client.post(f"/api/v1/mentions/{mention_id}/reply",
                                 json={"text": "@deniz_k Bakıyoruz, DM lütfen", "send": True},
                                 headers={"Authorization": "Bearer test-token"})

    assert response.status == 200
    assert (await response.json())["reply"] == {
        "id": post(999), "url": f"https://x.com/i/web/status/{post(999)}"}
    assert fake.posts[0][0]["reply"] == {"in_reply_to_tweet_id": post(105)}
    answered = (await rows(services))[post(105)]
    assert answered.status == "responded"
    assert answered.response_external_id == post(999)
    assert answered.response_url == f"https://x.com/i/web/status/{post(999)}"
    await services.store.close()
    await services.coordinator.close()


def test_a_long_post_keeps_its_whole_text() -> None:
    """X cuts `text` at 280 characters and sends the rest in `note_tweet`."""
    from connectors.twitter import tweet_item

    whole = "Siparişim " + "hâlâ gelmedi, " * 30
    tweet = {"id": "1860000000000000001", "text": whole[:277] + "…", "author_id": "7",
             "created_at": "2026-11-23T06:50:12.000Z", "note_tweet": {"text": whole}}
    item = tweet_item(tweet, {"7": {"username": "deniz_k", "name": "Deniz"}}, "twitter")
    assert item.text == whole


def shared_posts() -> dict[str, Any]:
    """A retweet, a quote and a plain post, as X sends them to a query without
    `-is:retweet`; built from the recorded page's users."""
    users = fixture("newer")["includes"]["users"]
    made = [
        (301, "RT @deniz_k: @acme siparişim 3 gündür kargoda, rezalet",
         [{"type": "retweeted", "id": post(105)}]),
        (302, "Aynısı bende de oldu @acme", [{"type": "quoted", "id": post(105)}]),
        (303, "@acme iadem ne zaman yatacak?", None),
    ]
    data = []
    for n, text, references in made:
        tweet = {"id": post(n), "text": text, "author_id": "3004", "lang": "tr",
                 "created_at": f"2026-11-23T06:4{n % 10}:00.000Z",
                 "conversation_id": post(n)}
        if references:
            tweet["referenced_tweets"] = references
        data.append(tweet)
    return {"data": data, "includes": {"users": users},
            "meta": {"newest_id": post(303), "oldest_id": post(301), "result_count": 3}}


async def test_a_retweet_is_stored_as_noise_and_a_quote_is_a_mention(
        db_url: str, clock: Any, enricher: Any, fake: FakeX) -> None:
    fake.answer(Answer.of(200, shared_posts()))
    config = make_config(db_url, sources=[source(fake, query="@acme")])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    assert await services.coordinator.poll("x-brand") == "ok"
    stored = await rows(services)
    retweet, quote, plain = (stored[post(n)] for n in (301, 302, 303))
    assert (retweet.status, retweet.deadline_at, retweet.assignee) == ("ignored", None, None)
    async with services.store.read() as session:
        why = await session.scalar(select(MentionEvent.data).where(
            MentionEvent.mention_id == retweet.id, MentionEvent.kind == "ingested"))
    assert why["reason"] == "noise: repost"
    for queued in (quote, plain):  # a quote is the author's own words
        assert queued.status in ("new", "assigned") and queued.deadline_at is not None
    await services.store.close()
    await services.coordinator.close()


def test_only_retweeted_references_make_a_repost() -> None:
    from connectors.twitter import tweet_item

    users = {"7": {"username": "deniz_k", "name": "Deniz"}}
    base = {"id": post(1), "text": "x", "author_id": "7",
            "created_at": "2026-11-23T06:50:12.000Z"}
    for references, expected in (([{"type": "retweeted", "id": post(2)}], True),
                                 ([{"type": "quoted", "id": post(2)}], False),
                                 ([{"type": "replied_to", "id": post(2)}], False),
                                 ("garbage", False), (None, False)):
        item = tweet_item({**base, "referenced_tweets": references}, users, "twitter")
        assert item.repost is expected, references
