"""RSS/Atom against a real aiohttp server on 127.0.0.1 serving recorded feeds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select

from connectors.base import AuthFailed, RateLimited, SourceError
from connectors.page_ids import SEEN_LIMIT
from connectors.rss import RssConnector, RssSource
from listener.app import build_services, prepare_database
from listener.models import Author, Mention, MentionEvent, RejectedItem
from tests.conftest import MONDAY_10, make_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rss"
RSS = "application/rss+xml; charset=utf-8"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Start = Callable[..., Awaitable[RssConnector]]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def utc(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=UTC)


def feed_response(body: bytes, content_type: str = RSS, **headers: str) -> web.Response:
    return web.Response(body=body, headers={"Content-Type": content_type, **headers})


def served(body: bytes, content_type: str = RSS) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return feed_response(body, content_type)
    return handler


@pytest.fixture
async def start(aiohttp_server: Any) -> AsyncIterator[Start]:
    """Serves `handler` at /feed.xml and returns a connector pointed at it."""
    made: list[RssConnector] = []

    async def _start(handler: Handler, **config: Any) -> RssConnector:
        app = web.Application()
        app.router.add_get("/feed.xml", handler)
        server = await aiohttp_server(app)
        source = RssSource.model_validate(
            {"id": "news", "kind": "rss", "url": str(server.make_url("/feed.xml")), **config})
        made.append(RssConnector(source))
        return made[-1]

    yield _start
    for connector in made:
        await connector.close()


async def test_rss_items_are_read_with_text_author_link_and_time(start: Start) -> None:
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        return feed_response(fixture("rss2.xml"))

    connector = await start(handler)
    batch = await connector.fetch(None, MONDAY_10)
    base = connector.config.url.removesuffix("/feed.xml")
    got = [(i.external_id, i.text, i.author.handle, i.author.email, i.url, i.created_at, i.note)
           for i in batch.items]
    assert got == [
        ("news-1001",
         'Acme kargo gecikmesi: müşteriler "3 gündür" bekliyor\n\n'
         "Siparişler hâlâ yolda & destek hattı yanıt vermiyor.\n\nAcme açıklama yapmadı.",
         "Ayşe Yılmaz", None, "https://news.example.com/acme/kargo-gecikmesi", utc(6, 15),
         None),
        # the description repeats the title: once is enough; the relative link is resolved
        ("news-1002", "Where is my refund? Acme support ignores emails", "John Smith",
         "editor@news.example.com", f"{base}/acme/refund-ignored", utc(6, 40), None),
        # no guid: the link is the id; content:encoded beats the short description
        ("https://news.example.com/acme/fiyat",
         "Acme fiyatları yine artırdı\n\nYeni fiyat listesi burada.",
         "Şikayet Haberleri – Acme", None, "https://news.example.com/acme/fiyat", utc(5, 0),
         None),
        # no guid, link or date: a digest id, the fetch time, and a note that says so
        (batch.items[3].external_id, "Acme mağazası kapandı mı?\n\nKadıköy şubesi bugün kapalıydı.",
         "Şikayet Haberleri – Acme", None, None, utc(7, 0),
         "no date in the feed: fetch time used"),
        ("news-1006", "Acme'den açıklama: kargolar yarın teslim\n\nGecikme için özür dileriz.",
         "Acme Destek", None, "https://news.example.com/acme/aciklama", utc(6, 45), None),
    ]
    assert batch.items[3].external_id.startswith("sha256:")
    assert {i.channel for i in batch.items} == {"rss"}
    assert [(r.external_id, r.reason) for r in batch.rejected] == [
        ("news-1005", "entry has neither a title nor any content")]
    assert seen[0].headers["User-Agent"] == connector.config.user_agent
    assert "If-None-Match" not in seen[0].headers


async def test_atom_entries_use_published_time_and_the_feed_author_as_fallback(
        start: Start) -> None:
    connector = await start(served(fixture("atom.xml"), "application/atom+xml"),
                            channel="reviews")
    batch = await connector.fetch(None, MONDAY_10)
    base = connector.config.url.removesuffix("/feed.xml")
    got = [(i.external_id, i.text, i.author.handle, i.author.email, i.url, i.created_at,
            i.channel) for i in batch.items]
    assert got == [
        ("tag:reviews.example.com,2026:review-77",
         'Broken again & no answer\n\nThe blender stopped after two days.\nSupport said "wait".',
         "Mehmet K.", "mehmet@example.com", "https://reviews.example.com/r/77", utc(5, 5),
         "reviews"),
        ("tag:reviews.example.com,2026:review-78",
         "Great service from Acme\n\nReplacement arrived in a day.", "Reviews Desk", None,
         f"{base}/r/78", utc(6, 10), "reviews"),
    ]
    assert batch.rejected == []


async def test_etag_and_last_modified_make_an_unchanged_feed_a_304(start: Start) -> None:
    feed = {"etag": '"v1"', "body": fixture("rss2.xml")}
    asked: list[tuple[str | None, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        asked.append((request.headers.get("If-None-Match"),
                      request.headers.get("If-Modified-Since")))
        if request.headers.get("If-None-Match") == feed["etag"]:
            return web.Response(status=304)
        return feed_response(feed["body"], ETag=feed["etag"],
                             **{"Last-Modified": "Mon, 23 Nov 2026 06:45:00 GMT"})

    connector = await start(handler)
    first = await connector.fetch(None, MONDAY_10)
    assert len(first.items) == 5
    second = await connector.fetch(first.cursor, MONDAY_10)
    assert second.items == [] and second.rejected == []
    assert second.cursor == first.cursor
    assert asked[1] == ('"v1"', "Mon, 23 Nov 2026 06:45:00 GMT")

    new_item = (b"<item><title>Yeni: iade 3 haftadir yok</title><guid>news-1007</guid>"
                b"<pubDate>Mon, 23 Nov 2026 09:55:00 +0300</pubDate></item>")
    feed.update(etag='"v2"', body=fixture("rss2.xml").replace(b"<item>", new_item + b"<item>",
                                                                1))
    third = await connector.fetch(second.cursor, MONDAY_10)
    assert [(i.external_id, i.text) for i in third.items] == [
        ("news-1007", "Yeni: iade 3 haftadir yok")]
    assert third.rejected == []  # the empty entry was recorded once, by the first poll
    assert json.loads(third.cursor)["etag"] == '"v2"'


async def test_a_feed_served_again_with_200_returns_nothing_twice(start: Start) -> None:
    connector = await start(served(fixture("rss2.xml")))
    first = await connector.fetch(None, MONDAY_10)
    second = await connector.fetch(first.cursor, MONDAY_10)
    assert len(first.items) == 5 and len(first.rejected) == 1
    assert second.items == [] and second.rejected == []


async def test_the_cursor_remembers_a_bounded_number_of_ids(start: Start) -> None:
    items = "".join(f"<item><title>Şikayet {n}</title><guid>big-{n}</guid></item>"
                    for n in range(SEEN_LIMIT + 100))
    body = f'<rss version="2.0"><channel><title>Big</title>{items}</channel></rss>'.encode()
    connector = await start(served(body))
    batch = await connector.fetch(None, MONDAY_10)
    assert len(batch.items) == SEEN_LIMIT + 100
    remembered = json.loads(batch.cursor)["seen"]
    assert remembered == [f"big-{n}" for n in range(SEEN_LIMIT)]  # the feed's newest first


async def test_an_empty_feed_is_an_empty_batch(start: Start) -> None:
    connector = await start(served(fixture("empty.xml")))
    batch = await connector.fetch(None, MONDAY_10)
    assert batch.items == [] and batch.rejected == []
    assert json.loads(batch.cursor)["seen"] == []


async def test_429_carries_retry_after_and_the_next_poll_succeeds(start: Start) -> None:
    answers = [web.Response(status=429, headers={"Retry-After": "120"}),
               feed_response(fixture("empty.xml"))]

    async def handler(request: web.Request) -> web.Response:
        return answers.pop(0)

    connector = await start(handler)
    with pytest.raises(RateLimited) as raised:
        await connector.fetch(None, MONDAY_10)
    assert raised.value.retry_after == 120
    assert (await connector.fetch(None, MONDAY_10)).items == []


@pytest.mark.parametrize("status,error,words", [
    (503, SourceError, "HTTP 503"),
    (403, AuthFailed, "sources[news].user_agent"),
])
async def test_server_errors_and_refusals(start: Start, status: int, error: type[Exception],
                                          words: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text="nope")

    connector = await start(handler)
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        await connector.fetch(None, MONDAY_10)


@pytest.mark.parametrize("content_type", [
    "application/rss+xml; charset=ISO-8859-9",  # the header says so
    "application/xml",  # only the XML declaration says so
    "text/xml; charset=windows-1254",  # the Windows code page Turkish servers report
])
async def test_turkish_feeds_in_legacy_charsets_are_decoded(start: Start,
                                                            content_type: str) -> None:
    connector = await start(served(fixture("tr-iso-8859-9.xml"), content_type))
    [item] = (await connector.fetch(None, MONDAY_10)).items
    assert item.text == ("Çağrı merkezi ulaşılamıyor\n\nIğdır'daki şubeye gittim; görevli "
                         '"sistem çöktü" dedi. ÖĞÜŞÇİ ığüşöç')
    assert (item.author.handle, item.author.email) == ("İsmail Güneş", "musteri@example.com.tr")
    assert item.created_at == utc(5, 20)


async def test_broken_xml_that_still_yields_entries_keeps_them(start: Start) -> None:
    connector = await start(served(fixture("broken.xml")))
    batch = await connector.fetch(None, MONDAY_10)
    assert [(i.external_id, i.text, i.author.handle) for i in batch.items] == [
        ("b-1", "Fiyat & kalite\n\nÜrün iyi ama pahalı", "Forum feed"),
        ("b-2", "İade süreci\n\nİade 2 haftadır bekliyor", "Forum feed"),
    ]


async def test_a_date_feedparser_cannot_read_gets_a_second_chance(start: Start) -> None:
    body = ('<rss version="2.0"><channel><title>T</title>'
            "<item><title>bir</title><guid>d-1</guid><pubDate>23 Kasım 2026 09:00 +0300"
            "</pubDate></item><item><title>iki</title><guid>d-2</guid>"
            "<pubDate>yakında</pubDate></item></channel></rss>").encode()
    connector = await start(served(body))
    batch = await connector.fetch(None, MONDAY_10)
    assert [(i.external_id, i.created_at, i.note) for i in batch.items] == [
        ("d-1", utc(6, 0), None),
        ("d-2", MONDAY_10, "unreadable date 'yakında' in the feed: fetch time used"),
    ]


@pytest.mark.parametrize("body,content_type,words", [
    (b'<html><head><link rel="alternate" type="application/rss+xml" href="/acme/feed">'
     b"</head><body><p>Acme news</p></body></html>", "text/html; charset=utf-8",
     "it is a web page; its feed is at http://127.0.0.1:{port}/acme/feed"),
    (b"<html><body><p>Acme news</p></body></html>", "text/html",
     "it is a web page; point the source at its feed"),
    (b'{"items": []}', "application/json", "did not return an RSS or Atom feed"),
    (b"<<<< not xml", "application/rss+xml", "not well-formed"),
    (b'<rss version="2.0"><channel><title>T</title><ite', "application/rss+xml",
     "malformed feed from"),
])
async def test_a_body_that_is_not_a_feed_is_a_source_error(
        start: Start, body: bytes, content_type: str, words: str) -> None:
    connector = await start(served(body, content_type))
    port = connector.config.url.split(":")[2].split("/")[0]
    with pytest.raises(SourceError) as raised:
        await connector.fetch(None, MONDAY_10)
    assert words.format(port=port) in str(raised.value)


def test_only_web_urls_are_accepted() -> None:
    for url in ("file:///etc/passwd", "feed.xml", "ftp://example.com/feed"):
        with pytest.raises(ValidationError, match="http:// or https://"):
            RssSource.model_validate({"id": "news", "kind": "rss", "url": url})


async def test_end_to_end_feed_items_become_mentions(
        db_url: str, clock: Any, enricher: Any, aiohttp_server: Any) -> None:
    app = web.Application()
    app.router.add_get("/feed.xml", served(fixture("rss2.xml")))
    server = await aiohttp_server(app)
    config = make_config(db_url, sources=[
        {"id": "news", "kind": "rss", "url": str(server.make_url("/feed.xml"))}],
        brand_accounts={"rss": ["Acme Destek"]})
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    try:
        assert await services.coordinator.poll("news") == "ok"
        async with services.store.read() as session:
            rows = {m.external_id: m for m in await session.scalars(select(Mention))}
            handles = {a.id: a.handle for a in await session.scalars(select(Author))}
            events = {e.mention_id: e.data for e in await session.scalars(
                select(MentionEvent).where(MentionEvent.kind == "ingested"))}
            rejected = list(await session.scalars(select(RejectedItem)))
        assert len(rows) == 5
        assert {m.channel for m in rows.values()} == {"rss"}
        first = rows["news-1001"]
        assert first.text.startswith('Acme kargo gecikmesi: müşteriler "3 gündür" bekliyor')
        assert handles[first.author_id] == "ayşe yılmaz"
        assert first.url == "https://news.example.com/acme/kargo-gecikmesi"
        assert first.created_at == utc(6, 15)
        assert first.status == "new" and first.deadline_at is not None  # queued (no rss agent)
        undated = next(m for m in rows.values() if m.external_id.startswith("sha256:"))
        assert undated.created_at == clock.now()
        assert events[undated.id]["note"] == "no date in the feed: fetch time used"
        assert "note" not in events[first.id]
        assert rows["news-1006"].status == "ignored"  # the brand's own post is never queued
        assert [(r.source, r.external_id) for r in rejected] == [("news", "news-1005")]
        assert "neither a title nor any content" in rejected[0].reason
        assert await services.coordinator.poll("news") == "ok"  # nothing new, nothing twice
        async with services.store.read() as session:
            assert len(list(await session.scalars(select(RejectedItem)))) == 1
    finally:
        await services.store.close()
        await services.coordinator.close()
