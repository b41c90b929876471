"""Web pages read with CSS selectors, against a real aiohttp complaint site on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select

from connectors.base import RateLimited, SourceError
from connectors.dates import parse_date
from connectors.html import HtmlConnector, HtmlSource, split_selector
from listener.app import build_services, prepare_database
from listener.models import Author, Mention, MentionEvent, RejectedItem
from tests.conftest import IST, MONDAY_10, make_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "html"
SELECTORS = {"item": "article.complaint", "id": "@data-id", "text": "h2, .body",
             "author": ".user", "link": "a.title@href", "created_at": ".date",
             "next": "a.next@href"}
PAGE_1_KEYS = ["c-501", "c-500", "c-499", "c-498"]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def utc(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# -- dates as sites print them ------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("2026-11-23T09:15:00+03:00", utc(23, 6, 15)),
    ("2026-11-23T06:15:00Z", utc(23, 6, 15)),
    ("2026-11-23 09:15", utc(23, 6, 15)),  # naive: the source's timezone
    ("Mon, 23 Nov 2026 09:15:00 +0300", utc(23, 6, 15)),
    ("23.11.2026 14:05", utc(23, 11, 5)),
    ("23/11/2026", utc(22, 21, 0)),  # midnight in Istanbul
    ("03/04/2026 10:00", datetime(2026, 4, 3, 7, 0, tzinfo=UTC)),  # day first
    ("23 Kasım 2026 14:05", utc(23, 11, 5)),
    ("23 KASIM 2026 Pazartesi 09:30", utc(23, 6, 30)),
    ("23 Kas 2026", utc(22, 21, 0)),
    ("Yayınlanma: 23 Kas. 2026, 08:00", utc(23, 5, 0)),
    ("23 Kasım 2026 09:00 +0300", utc(23, 6, 0)),
    ("22 Kasım 18:00", utc(22, 15, 0)),  # no year: this year's
    ("31 Aralık 23:00", datetime(2025, 12, 31, 20, 0, tzinfo=UTC)),  # ...unless in the future
    ("23 November 2026 2:05 PM", utc(23, 11, 5)),
    ("Nov 23, 2026 12:30 am", utc(22, 21, 30)),
    ("23.11.2026 14:05 GMT+01:00", utc(23, 13, 5)),
    ("2 saat önce", utc(23, 5, 0)),
    ("5 dakika önce", utc(23, 6, 55)),
    ("5 dk. önce", utc(23, 6, 55)),
    ("bir gün önce", utc(22, 7, 0)),
    ("3 hours ago", utc(23, 4, 0)),
    ("an hour ago", utc(23, 6, 0)),
    ("2 weeks ago", utc(9, 7, 0)),
    ("az önce", utc(23, 7, 0)),
    ("just now", utc(23, 7, 0)),
    ("dün", utc(22, 7, 0)),
    ("Dün 14:05", utc(22, 11, 5)),
    ("yesterday at 9:30 PM", utc(22, 18, 30)),
    ("Bugün 08:30", utc(23, 5, 30)),
    ("1795417200", utc(23, 7, 0)),  # a data-timestamp attribute
    ("geçen salı", None),
    ("31.02.2026", None),
    ("", None),
])
def test_dates_as_sites_print_them(text: str, expected: datetime | None) -> None:
    assert parse_date(text, MONDAY_10, IST) == expected


@pytest.mark.parametrize("spec,expected", [
    ("a.title@href", ("a.title", "href")),
    ("@data-id", ("", "data-id")),
    ("time @datetime", ("time", "datetime")),
    (".body", (".body", None)),
    ("a[href*='@']", ("a[href*='@']", None)),
])
def test_selector_specs(spec: str, expected: tuple[str, str | None]) -> None:
    assert split_selector(spec) == expected


# -- a fake complaint site ------------------------------------------------------------------

class Site:
    """Pages by `?sayfa=`, a robots.txt, and a log of every request's path and headers."""

    def __init__(self) -> None:
        self.pages = {"1": fixture("complaints-1.html"), "2": fixture("complaints-2.html")}
        self.content_type = "text/html; charset=utf-8"
        self.robots: tuple[int, str] = (200, "User-agent: *\nDisallow: /admin/\n")
        self.failures: list[web.Response] = []
        self.requests: list[str] = []
        self.user_agents: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/robots.txt", self.robots_txt)
        app.router.add_get("/acme/sikayetler", self.page)
        return app

    async def robots_txt(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        status, body = self.robots
        return web.Response(status=status, text=body)

    async def page(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        self.user_agents.add(request.headers["User-Agent"])
        if self.failures:
            return self.failures.pop(0)
        body = self.pages.get(request.query.get("sayfa", "1"))
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body, headers={"Content-Type": self.content_type})


class FakeTime:
    """A monotonic clock that only moves when the connector sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Start = Callable[..., Awaitable[HtmlConnector]]


@pytest.fixture
def site() -> Site:
    return Site()


@pytest.fixture
def pacing() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def start(aiohttp_server: Any, site: Site, pacing: FakeTime) -> AsyncIterator[Start]:
    made: list[HtmlConnector] = []
    server = await aiohttp_server(site.app())

    async def _start(**config: Any) -> HtmlConnector:
        source = HtmlSource.model_validate({
            "id": "complaints", "kind": "html", "url": str(server.make_url("/acme/sikayetler")),
            "selectors": SELECTORS, "max_pages": 3, "timezone": "Europe/Istanbul", **config})
        made.append(HtmlConnector(source, sleep=pacing.sleep, monotonic=pacing.monotonic))
        return made[-1]

    yield _start
    for connector in made:
        await connector.close()


def origin(connector: HtmlConnector) -> str:
    return connector.config.url.removesuffix("/acme/sikayetler")


# -- behaviour ------------------------------------------------------------------------------

async def test_two_pages_are_read_with_links_resolved_and_dates_understood(
        start: Start, site: Site, pacing: FakeTime) -> None:
    connector = await start()
    batch = await connector.fetch(None, MONDAY_10)
    base = origin(connector)
    got = [(i.external_id, i.text, i.author.handle, i.url, i.created_at, i.note)
           for i in batch.items]
    assert got == [
        ("c-501", "Kargo 5 gündür gelmedi\n\nSiparişim 18 Kasım'da verildi & hâlâ yolda.\n\n"
                  "Müşteri hizmetleri telefonu açmıyor.",
         "Ayşe K.", f"{base}/acme/kargo-5-gundur-gelmedi-c-501", utc(23, 6, 40), None),
        ("c-500", "İade yapılmadı\n\nÜrünü iade ettim\nama param 2 haftadır gelmedi.",
         "Mehmet", f"{base}/acme/iade-yapilmadi-c-500", utc(23, 5, 0), None),
        ("c-499", "Faturada fazla ücret\n\nAboneliğimi iptal ettiğim halde ücret kesildi.",
         "Can", f"{base}/acme/fatura-c-499", MONDAY_10,
         "unreadable date 'geçen salı' on the page: fetch time used"),
        ("c-498", "Yanlış adrese teslimat\n\nPaket komşuya bırakılmış, haber verilmedi.",
         "Zeynep T.", "https://www.sikayet.example/acme/teslimat-c-498", utc(23, 5, 5), None),
        ("c-497", "Garanti reddedildi\n\nCihaz 3 aylık, garanti kapsamı dışı dediler.",
         "Deniz", f"{base}/acme/garanti-c-497", utc(22, 15, 30), None),
        ("c-496", "Kurye kaba davrandı\n\nKapıda tartışma çıkardı.",
         "Ali", f"{base}/acme/kurye-c-496", utc(22, 11, 5), None),
    ]
    assert {i.channel for i in batch.items} == {"html"}
    [rejected] = batch.rejected
    assert rejected.reason == "no id: selector '@data-id' found nothing in the item"
    assert "Bu şikayet kaldırıldı" in rejected.payload and rejected.external_id is None
    assert site.requests == ["/robots.txt", "/acme/sikayetler", "/acme/sikayetler?sayfa=2"]
    assert site.user_agents == {connector.config.user_agent}
    assert pacing.sleeps == [5.0, 5.0]  # robots.txt → page 1 → page 2, 5s apart


async def test_a_later_poll_stops_at_the_first_page_with_nothing_new(
        start: Start, site: Site, pacing: FakeTime) -> None:
    connector = await start()
    first = await connector.fetch(None, MONDAY_10)
    remembered = json.loads(first.cursor)["seen"]
    assert remembered[:2] + remembered[3:5] == PAGE_1_KEYS
    assert remembered[2].startswith("sha256:")  # the item without an id, by its markup
    site.requests.clear()
    pacing.now += 600  # the poll interval
    second = await connector.fetch(first.cursor, MONDAY_10 + timedelta(minutes=10))
    assert second.items == [] and second.rejected == []  # the broken item is not re-recorded
    assert site.requests == ["/acme/sikayetler"]  # robots.txt cached, page 2 not needed
    assert pacing.sleeps == [5.0, 5.0]  # no wait: the last request was long ago

    fresh = ('<article class="complaint" data-id="c-502"><h2><a class="title" '
             'href="/acme/c-502">Yine kargo</a></h2><div class="body">Bir hafta oldu.</div>'
             '<span class="user">Ayşe K.</span><span class="date">5 dakika önce</span>'
             "</article>").encode()
    site.pages["1"] = site.pages["1"].replace(b'<main class="list">',
                                              b'<main class="list">' + fresh)
    site.requests.clear()
    third = await connector.fetch(second.cursor, MONDAY_10 + timedelta(minutes=20))
    assert [(i.external_id, i.text, i.created_at) for i in third.items] == [
        ("c-502", "Yine kargo\n\nBir hafta oldu.", utc(23, 7, 15))]
    assert site.requests == ["/acme/sikayetler", "/acme/sikayetler?sayfa=2"]
    assert json.loads(third.cursor)["seen"][:2] == ["c-502", "c-501"]


async def test_a_redesigned_page_is_an_error_not_a_quiet_day(start: Start, site: Site) -> None:
    site.pages["1"] = fixture("redesigned.html")
    connector = await start()
    with pytest.raises(SourceError) as raised:
        await connector.fetch(None, MONDAY_10)
    assert str(raised.value) == (
        f"selector 'article.complaint' matched nothing on {connector.config.url}: the page "
        "may have been redesigned; check sources[complaints].selectors.item")


@pytest.mark.parametrize("status,robots", [
    (200, "User-agent: *\nDisallow: /\n"),
    (200, "User-agent: Listener\nDisallow: /acme/\n\nUser-agent: *\nAllow: /\n"),
])
async def test_robots_txt_forbidding_the_page_is_an_error_and_nothing_is_fetched(
        start: Start, site: Site, status: int, robots: str) -> None:
    site.robots = (status, robots)
    connector = await start()
    with pytest.raises(SourceError) as raised:
        await connector.fetch(None, MONDAY_10)
    message = str(raised.value)
    assert "robots.txt" in message and "forbids" in message
    assert "ignore_robots: true" in message
    assert site.requests == ["/robots.txt"]


@pytest.mark.parametrize("status,robots", [
    (200, "User-agent: OtherBot\nDisallow: /\n"),  # rules for someone else
    (404, "not found"),  # no robots.txt at all
    (403, "forbidden"),  # Google and RFC 9309: a 4xx robots.txt means no restrictions
])
async def test_robots_txt_allowing_us_lets_the_poll_through(
        start: Start, site: Site, status: int, robots: str) -> None:
    site.robots = (status, robots)
    connector = await start(max_pages=1)
    batch = await connector.fetch(None, MONDAY_10)
    assert [i.external_id for i in batch.items] == PAGE_1_KEYS


async def test_an_unreachable_robots_txt_means_not_now(start: Start, site: Site) -> None:
    site.robots = (503, "down")
    connector = await start()
    with pytest.raises(SourceError, match=r"robots.txt .* answered HTTP 503"):
        await connector.fetch(None, MONDAY_10)
    assert site.requests == ["/robots.txt"]


async def test_ignore_robots_fetches_without_asking(start: Start, site: Site) -> None:
    site.robots = (200, "User-agent: *\nDisallow: /\n")
    connector = await start(ignore_robots=True, max_pages=1)
    batch = await connector.fetch(None, MONDAY_10)
    assert [i.external_id for i in batch.items] == PAGE_1_KEYS
    assert site.requests == ["/acme/sikayetler"]


async def test_a_next_page_robots_txt_forbids_ends_the_walk_there(
        start: Start, site: Site) -> None:
    site.robots = (200, "User-agent: *\nDisallow: /acme/sikayetler?sayfa=\n")
    connector = await start()
    batch = await connector.fetch(None, MONDAY_10)
    assert [i.external_id for i in batch.items] == PAGE_1_KEYS
    assert site.requests == ["/robots.txt", "/acme/sikayetler"]


@pytest.mark.parametrize("page_3", [
    None,  # the link points one page past the last: 404
    b'<html><body><main class="list"><p>Sonu&ccedil; yok</p></main></body></html>',
])
async def test_a_next_link_to_nothing_ends_the_walk_with_what_was_read(
        start: Start, site: Site, page_3: bytes | None) -> None:
    site.pages["2"] = site.pages["2"].replace(b'<a class="prev"', b'<a class="next" '
                                              b'href="?sayfa=3">3</a><a class="prev"')
    if page_3 is not None:
        site.pages["3"] = page_3
    connector = await start()
    batch = await connector.fetch(None, MONDAY_10)
    assert [i.external_id for i in batch.items] == [*PAGE_1_KEYS, "c-497", "c-496"]
    assert site.requests[-1] == "/acme/sikayetler?sayfa=3"


@pytest.mark.parametrize("content_type", [
    "text/html",  # only the page's <meta http-equiv> names windows-1254
    "text/html; charset=ISO-8859-9",  # the header wins; browsers read it as windows-1254
])
async def test_legacy_turkish_pages_with_unclosed_tags_are_read(
        start: Start, site: Site, content_type: str) -> None:
    site.pages["1"] = fixture("legacy-windows-1254.html")
    site.content_type = content_type
    connector = await start(selectors={"item": "tr.complaint", "id": "@data-id",
                                       "text": "td.body", "author": "td.user",
                                       "created_at": "td.date"})
    batch = await connector.fetch(None, MONDAY_10)
    assert [(i.external_id, i.text, i.author.handle, i.created_at, i.url)
            for i in batch.items] == [
        ("t-71", "Ödeme iki kez çekildi, İADE YOK! ığüşöç ĞÜŞİÖÇ", "Gülşen Işık",
         utc(23, 6, 10), connector.config.url),
        ("t-70", "Şoför çok kaba", "Oğuz", utc(23, 5, 55), connector.config.url),
    ]


async def test_429_carries_retry_after_and_the_next_poll_succeeds(
        start: Start, site: Site) -> None:
    site.failures.append(web.Response(status=429, headers={"Retry-After": "90"}))
    connector = await start(max_pages=1)
    with pytest.raises(RateLimited) as raised:
        await connector.fetch(None, MONDAY_10)
    assert raised.value.retry_after == 90
    batch = await connector.fetch(None, MONDAY_10)
    assert [i.external_id for i in batch.items] == PAGE_1_KEYS


async def test_a_server_error_fails_the_poll(start: Start, site: Site) -> None:
    site.failures.append(web.Response(status=502, text="Bad Gateway"))
    connector = await start()
    with pytest.raises(SourceError, match="HTTP 502"):
        await connector.fetch(None, MONDAY_10)


async def test_items_without_text_are_rejected_and_missing_dates_noted(
        start: Start, site: Site) -> None:
    site.pages["1"] = (b'<ul><li class="c" data-id="x-1"><p class="t">  </p></li>'
                       b'<li class="c" data-id="x-2"><p class="t">Merhaba</p></li></ul>')
    connector = await start(selectors={"item": "li.c", "id": "@data-id", "text": "p.t"})
    batch = await connector.fetch(None, MONDAY_10)
    assert [(i.external_id, i.author.handle, i.created_at, i.note) for i in batch.items] == [
        ("x-2", origin(connector).removeprefix("http://"), MONDAY_10,
         "no date on the page: fetch time used")]
    assert [(r.external_id, r.reason) for r in batch.rejected] == [
        ("x-1", "no text: selector 'p.t' found nothing in the item")]


@pytest.mark.parametrize("change,words", [
    ({"selectors": {**SELECTORS, "item": "article["}}, "invalid CSS selector 'article['"),
    ({"selectors": {**SELECTORS, "next": "@href"}}, "`next` needs a CSS selector"),
    ({"timezone": "Istanbul"}, "unknown time zone 'Istanbul'"),
    ({"max_pages": 10, "host_interval": "5s"}, "max_pages × host_interval (50s)"),
    ({"url": "file:///etc/passwd"}, "http:// or https://"),
])
def test_config_mistakes_are_caught_at_startup(change: dict[str, Any], words: str) -> None:
    data = {"id": "complaints", "kind": "html", "url": "https://sikayet.example/acme",
            "selectors": SELECTORS, **change}
    with pytest.raises(ValidationError, match=re.escape(words)):
        HtmlSource.model_validate(data)


async def test_end_to_end_complaints_become_mentions_on_their_channel(
        db_url: str, clock: Any, enricher: Any, aiohttp_server: Any, site: Site) -> None:
    server = await aiohttp_server(site.app())
    config = make_config(db_url, sources=[{
        "id": "complaints", "kind": "html", "url": str(server.make_url("/acme/sikayetler")),
        "channel": "complaints", "selectors": SELECTORS, "max_pages": 3,
        "timezone": "Europe/Istanbul"}])
    services = build_services(config, clock=clock, enricher=enricher)
    pacing = FakeTime()
    services.coordinator.sources["complaints"].connector.pacer.sleep = pacing.sleep
    await prepare_database(services, migrate=True)
    try:
        assert await services.coordinator.poll("complaints") == "ok"
        async with services.store.read() as session:
            rows = {m.external_id: m for m in await session.scalars(select(Mention))}
            handles = {a.id: a.handle for a in await session.scalars(select(Author))}
            events = {e.mention_id: e.data for e in await session.scalars(
                select(MentionEvent).where(MentionEvent.kind == "ingested"))}
            rejected = list(await session.scalars(select(RejectedItem)))
        assert sorted(rows) == ["c-496", "c-497", "c-498", "c-499", "c-500", "c-501"]
        assert {m.channel for m in rows.values()} == {"complaints"}
        complaint = rows["c-500"]
        assert complaint.text == "İade yapılmadı\n\nÜrünü iade ettim\nama param 2 haftadır gelmedi."
        assert handles[complaint.author_id] == "mehmet"
        assert complaint.url == f"{server.make_url('/acme/iade-yapilmadi-c-500')}"
        assert complaint.created_at == utc(23, 5, 0)
        assert complaint.deadline_at is not None and complaint.status != "ignored"
        assert rows["c-499"].created_at == clock.now()
        assert events[rows["c-499"].id]["note"] == (
            "unreadable date 'geçen salı' on the page: fetch time used")
        assert "note" not in events[complaint.id]
        assert [(r.source, r.external_id) for r in rejected] == [("complaints", None)]
        assert rejected[0].reason.startswith("no id:")
    finally:
        await services.store.close()
        await services.coordinator.close()
