"""The connectors test_parsers_fuzz leaves out (YouTube comment threads, App Store customer
reviews, Google Play reviews, complaint pages read with CSS selectors) fed real-shaped
payloads with hostile leaves swapped in (hypothesis), on SQLite and PostgreSQL: a poll
yields items and Rejected entries with a reason, or a SourceError the coordinator
retries; never another exception, and the real pipeline stores every item it yields and
quarantines every reject with its reason."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from connectors.base import Batch
from listener.app import prepare_database
from listener.models import Mention, RejectedItem
from listener.pipeline.ingest import SourceInfo, in_range
from listener.pipeline.normalize import normalize
from tests.connectors import test_app_store as apple
from tests.connectors import test_google_play as play
from tests.connectors import test_youtube as youtube
from tests.connectors.test_html import PAGE_1_KEYS
from tests.hostile.strategies import FUZZ, hostile_text
from tests.hostile.test_parsers_fuzz import mutated, poll_calmly

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SOURCE_ID = "fuzzed"

YOUTUBE_THREADS = {
    "kind": "youtube#commentThreadListResponse", "nextPageToken": "QURTSl9pMm5",
    "pageInfo": {"totalResults": 3, "resultsPerPage": 100},
    "items": [
        youtube.thread("UgzKargo", "Kargom nerede?", youtube.at(6, 30), replies=[
            youtube.reply("UgzKargo", 1, "DM'den yazar mısınız?", youtube.at(6, 40),
                          author=youtube.CHANNEL, name="@acme"),
            youtube.reply("UgzKargo", 2, "Bende de aynı sorun", youtube.at(6, 50),
                          author=youtube.VEYSEL, name="@veysel")], total=3),
        youtube.thread("UgxIade", "", youtube.at(5), html="İade <b>hâlâ</b> yok<br>yardım"),
        youtube.thread("UgwEski", "Eski yorum", youtube.at(6) - timedelta(days=3)),
    ],
}

# The rest of the long thread, from `comments?parentId=`; its page token never changes.
YOUTUBE_REPLIES = {"kind": "youtube#commentListResponse", "nextPageToken": "Q2dOeUpR",
                   "items": [youtube.reply("UgzKargo", 3, "Hâlâ bekliyorum",
                                           youtube.at(6, 55))]}

APP_STORE_REVIEWS = {
    "data": [apple.review("00000001-aaaa", minute=30, response="r-1"),
             apple.review("00000002-bbbb", body="Harika", rating=5, minute=20)],
    "included": [apple.response_object("r-1", "Üzgünüz, yardımcı olalım", 40)],
    "links": {"self": "https://api.appstoreconnect.apple.com/v1/apps/1234567890/reviews",
              "next": "https://api.appstoreconnect.apple.com/v1/apps/1234567890/"
                      "customerReviews?cursor=2&limit=200"},
}

GOOGLE_PLAY_REVIEWS = {
    "reviews": [play.review("gp:AOqp-1", minute=30, reply=("Teşekkürler", 20)),
                play.review("gp:AOqp-2", text="Güncellemeden sonra açılmıyor", stars=1,
                            minute=20)],
    "tokenPagination": {"nextPageToken": "Cg0I-2"},
}


class Upstream:
    """Serves the current example's body on every path but those in `fixed`, with any
    Content-Type header, and an access token to anyone who asks at /token (Google's OAuth
    endpoint); counts the requests."""

    def __init__(self) -> None:
        self.body = b""
        self.content_type = "application/json"
        self.fixed: dict[str, Any] = {"/youtube/v3/comments": YOUTUBE_REPLIES}
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.path == "/token":
            return web.json_response({"access_token": "ya29.fuzz", "expires_in": 3600,
                                      "token_type": "Bearer"})
        if request.path in self.fixed:
            return web.json_response(self.fixed[request.path])
        return web.Response(body=self.body, headers={"Content-Type": self.content_type})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


@pytest.fixture
async def upstream(aiohttp_server: Any) -> tuple[Upstream, str]:
    fake = Upstream()
    return fake, str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An App Store Connect .p8 key and a Google service-account key file, both real."""
    folder = tmp_path_factory.mktemp("keys")
    p8 = folder / "AuthKey.p8"
    p8.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    return {"p8": str(p8), "pem": pem, "folder": str(folder)}


def play_key(key_files: dict[str, str], base: str) -> str:
    """The service-account key, its token_uri on this example's upstream."""
    path = Path(key_files["folder"]) / f"play-{base.rsplit(':', 1)[-1]}.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "acme-play", "private_key_id": "k1",
        "private_key": key_files["pem"], "token_uri": base + "/token",
        "client_email": "listener@acme-play.iam.gserviceaccount.com", "client_id": "1"}))
    return str(path)


def json_source(kind: str, base: str, key_files: dict[str, str]) -> tuple[dict[str, Any], Any]:
    """(source entry, recorded body) for the JSON APIs."""
    if kind == "youtube":
        return {"kind": "youtube", "channel_id": youtube.CHANNEL, "api_key": "AIza-fuzz",
                "base_url": base}, YOUTUBE_THREADS
    if kind == "app_store":
        return {"kind": "app_store", "app_id": apple.APP_ID, "issuer_id": apple.ISSUER,
                "key_id": apple.KEY_ID, "private_key_file": key_files["p8"],
                "base_url": base, "max_pages": 2}, APP_STORE_REVIEWS
    return {"kind": "google_play", "package": play.PACKAGE, "base_url": base,
            "service_account_file": play_key(key_files, base), "max_pages": 2}, \
        GOOGLE_PLAY_REVIEWS


@pytest.fixture
async def ready(services: Any) -> Any:
    await prepare_database(services, migrate=True)
    return services


async def store(services: Any, kind: str, batch: Batch) -> None:
    """The batch through the real pipeline: every item is a mention afterwards (stored now
    or before), every reject a quarantined row with its reason."""
    async with services.store.read() as session:
        quarantined = await session.scalar(select(func.count()).select_from(RejectedItem))
    await services.pipeline.ingest(SourceInfo(SOURCE_ID, kind), batch.items,
                                   cursor=batch.cursor, save_cursor=True,
                                   rejected=batch.rejected)
    async with services.store.read() as session:
        stored = set(await session.scalars(select(Mention.external_id).where(
            Mention.source == SOURCE_ID)))
        reasons = list(await session.scalars(select(RejectedItem.reason)))
    items = [normalize(item) for item in batch.items]
    too_late_or_early = [item for item in items if not in_range(item.created_at)]
    assert {item.external_id for item in items} - \
        {item.external_id for item in too_late_or_early} <= stored
    assert len(reasons) == quarantined + len(batch.rejected) + len(too_late_or_early)
    assert all(reasons)
    assert reasons.count("created_at out of range") >= len(too_late_or_early)


@pytest.mark.parametrize("kind", ["youtube", "app_store", "google_play"])
async def test_each_recorded_payload_still_parses(kind: str, upstream: Any,
                                                  key_files: dict[str, str]) -> None:
    fake, base = upstream
    entry, document = json_source(kind, base, key_files)
    fake.body = json.dumps(document).encode()
    batch = await poll_calmly(entry)
    assert batch is not None and len(batch.items) >= 3 and not batch.rejected


async def test_a_reply_page_token_that_never_changes_ends_the_thread_read(
        upstream: Any, key_files: dict[str, str]) -> None:
    """It used to be followed until the day's whole quota (10,000 calls) was spent."""
    fake, base = upstream
    entry, document = json_source("youtube", base, key_files)
    fake.body = json.dumps(document).encode()
    batch = await poll_calmly(entry)
    assert batch is not None and "UgzKargo.r3" in {item.external_id for item in batch.items}
    assert fake.requests == 3  # the thread list, then the replies twice


# Where each parser reads every field: most mutations land inside one of these.
ITEMS = {"youtube": [("items", 0, "snippet", "topLevelComment"), ("items", 1),
                     ("items", 0, "replies", "comments", 0)],
         "app_store": [("data", 0), ("included", 0)],
         "google_play": [("reviews", 0, "comments", 0), ("reviews", 0, "comments", 1),
                         ("reviews", 1)]}


@st.composite
def mutated_near(draw: st.DrawFn, document: Any, roots: list[tuple[Any, ...]]) -> Any:
    """`mutated`, most of the time within one item rather than anywhere in the page."""
    root = draw(st.sampled_from([(), *roots]))
    if not root:
        return draw(mutated(document))
    doc = copy.deepcopy(document)
    *parents, key = root
    parent = doc
    for step in parents:
        parent = parent[step]
    parent[key] = draw(mutated(parent[key]))
    return doc


@pytest.mark.parametrize("kind", ["youtube", "app_store", "google_play"])
@FUZZ
@given(data=st.data())
async def test_hostile_api_payloads_are_stored_or_quarantined(
        kind: str, upstream: Any, key_files: dict[str, str], ready: Any,
        data: st.DataObject) -> None:
    fake, base = upstream
    entry, document = json_source(kind, base, key_files)
    hostile = data.draw(mutated_near(document, ITEMS[kind]))
    fake.body = json.dumps(hostile, allow_nan=True).encode()
    batch = await poll_calmly(entry)
    if batch is not None:
        await store(ready, kind, batch)


def with_values(document: Any, changes: dict[tuple[Any, ...], Any]) -> Any:
    """The document with the value at each path replaced."""
    doc = copy.deepcopy(document)
    for (*parents, key), value in changes.items():
        parent = doc
        for step in parents:
            parent = parent[step]
        parent[key] = value
    return doc


YT_TOP = ("items", 0, "snippet", "topLevelComment")
APPLE_REVIEW = ("data", 0, "attributes")
PLAY_USER = ("reviews", 0, "comments", 0, "userComment")
LONG_ID = "x" * 50_000
# A parsed time so late that the SLA planner would overflow on it: quarantined instead.
TOO_LATE_TO_PLAN = {(*YT_TOP, "snippet", "publishedAt"): "9999-12-31T23:59:59Z"}
# Values that once broke these parsers, each at the field it broke.
KNOWN_HOSTILE = {
    "youtube": [
        {("items", 0): "\ud800"},
        {("items", 0, "id"): "\ud800", (*YT_TOP, "id"): "\ud800"},
        {("items", 0, "id"): LONG_ID, (*YT_TOP, "id"): LONG_ID},
        {(*YT_TOP, "id"): LONG_ID, (*YT_TOP, "snippet", "publishedAt"): None},
        TOO_LATE_TO_PLAN,
        {(*YT_TOP, "snippet", "publishedAt"): "0001-01-01T00:00:00+05:00"},
        {("nextPageToken",): "\ud800"},
        {("nextPageToken",): "a\x00b"},
    ],
    "app_store": [
        {("data", 0, "id"): "\ud800"},
        {("data", 0, "id"): LONG_ID},
        {(*APPLE_REVIEW, "createdDate"): "9999-12-31T23:59:59-08:00"},
        {(*APPLE_REVIEW, "createdDate"): "0001-01-01T00:00:00+05:00"},
        {("included", 0, "attributes", "lastModifiedDate"): "0001-01-01T00:00:00+05:00"},
        {("data", 1): "\ud800"},
        {(*APPLE_REVIEW, "territory"): "a\x00b", ("data", 1, "attributes", "territory"): "\udfff"},
        {("links", "next"): "http://["},
        {("links", "next"): "/v1/\ud800?\x00"},
    ],
    "google_play": [
        {("reviews", 0, "reviewId"): "\ud800"},
        {(*PLAY_USER, "appVersionName"): "a\x00b", (*PLAY_USER, "device"): "\ud800"},
        {(*PLAY_USER, "lastModified", "seconds"): 10**400},
        {(*PLAY_USER, "lastModified", "seconds"): str(2**63)},
        {(*PLAY_USER, "lastModified", "seconds"): "253402300800"},
        {("reviews", 0, "comments", 1, "developerComment", "lastModified", "seconds"): 2**63},
        {("tokenPagination", "nextPageToken"): "\ud800"},
        {("tokenPagination", "nextPageToken"): "a\x00b"},
    ],
}


def known_case(kind: str, changes: dict[tuple[Any, ...], Any]) -> Any:
    name = " ".join(f"{'.'.join(map(str, path))}={str(value)[:12]!r}"
                    for path, value in changes.items())
    return pytest.param(kind, changes, id=f"{kind} {name}")


@pytest.mark.parametrize("kind,changes", [known_case(kind, changes) for kind, cases in
                                          KNOWN_HOSTILE.items() for changes in cases])
async def test_known_hostile_values_are_stored_or_quarantined(
        kind: str, changes: dict[tuple[Any, ...], Any], upstream: Any,
        key_files: dict[str, str], ready: Any) -> None:
    fake, base = upstream
    entry, document = json_source(kind, base, key_files)
    fake.body = json.dumps(with_values(document, changes)).encode()
    batch = await poll_calmly(entry)
    if batch is not None:
        await store(ready, kind, batch)


PAGE = (FIXTURES / "html" / "complaints-1.html").read_text(encoding="utf-8")
HTML_SOURCE = {"kind": "html", "ignore_robots": True, "host_interval": "0s", "max_pages": 2,
               "timezone": "Europe/Istanbul", "selectors": {
                   "item": "article.complaint", "id": "@data-id", "text": "h2, .body",
                   "author": ".user", "link": "a.title@href", "created_at": ".date",
                   "next": "a.next@href"}}
BAD_LINKS = ["http://[", "http://[::1", "javascript:alert(1)", "mailto:x@example.com",
             " data:text/html,<b>x"]
CHARSETS = ["utf-8", "rot13", "base64", "idna", "punycode", "utf-7", "utf-32", "undefined",
            "hex", "x-unknown", "\"", "ISO-8859-9"]


def as_markup(value: str, quote: str = "") -> str:
    """Hostile text as it can stand in a page: escaped, lone surrogates replaced."""
    text = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return text.replace(quote, "&quot;") if quote else text


@st.composite
def hostile_page(draw: st.DrawFn) -> tuple[bytes, str]:
    """The recorded complaint page with some texts and attribute values hostile (the next
    link stays relative: it is followed, and only ever to this upstream), a hostile
    charset in the <meta> tag or the Content-Type, and maybe cut off anywhere."""
    links = st.one_of(hostile_text(), st.sampled_from(BAD_LINKS))
    page = PAGE
    spots = list(re.finditer(r">([^<]+)<", page)) + \
        list(re.finditer(r'(data-id|href|class)="([^"]*)"', page))
    for match in draw(st.lists(st.sampled_from(spots), min_size=1, max_size=4, unique=True)):
        if match.group(0).startswith(">"):
            hostile = ">" + as_markup(draw(hostile_text())) + "<"
        else:
            followed = match.group(2) == "?sayfa=2"
            value = as_markup(draw(links if match.group(1) == "href" and not followed
                                   else hostile_text()), '"')
            hostile = f'{match.group(1)}="{"./" if followed else ""}{value}"'
        page = page.replace(match.group(0), hostile, 1)
    charset = draw(st.sampled_from(CHARSETS))
    in_meta = draw(st.booleans())
    if in_meta:
        page = page.replace('<meta charset="utf-8">', f'<meta charset="{charset}">')
    cut = draw(st.one_of(st.none(), st.integers(0, len(page))))
    body = page[:cut].encode("utf-8", "surrogatepass")
    return body, "text/html" if in_meta else f"text/html; charset={charset}"


@FUZZ
@given(page=hostile_page())
async def test_hostile_complaint_pages_are_stored_or_quarantined(
        upstream: Any, ready: Any, page: tuple[bytes, str]) -> None:
    fake, base = upstream
    fake.body, fake.content_type = page
    batch = await poll_calmly({**HTML_SOURCE, "url": base + "/acme/sikayetler"})
    if batch is not None:
        await store(ready, "html", batch)


@pytest.mark.parametrize("charset", ["rot13", "base64", "idna", "punycode", "undefined",
                                     "unicode_escape", "utf-7"])
@pytest.mark.parametrize("declared", ["meta", "header"])
async def test_a_charset_no_browser_knows_reads_the_page_as_utf8(
        upstream: Any, charset: str, declared: str) -> None:
    fake, base = upstream
    page = PAGE.replace('<meta charset="utf-8">', f'<meta charset="{charset}">') \
        if declared == "meta" else PAGE
    fake.body = page.encode()
    fake.content_type = "text/html" if declared == "meta" else f"text/html; charset={charset}"
    batch = await poll_calmly({**HTML_SOURCE, "url": base + "/acme/sikayetler"})
    assert batch is not None
    assert batch.items[0].text.startswith("Kargo 5 gündür gelmedi")


@pytest.mark.parametrize("link", BAD_LINKS)
@pytest.mark.parametrize("where", ["item", "next", "base"])
async def test_a_link_no_browser_could_follow_keeps_the_items(
        upstream: Any, where: str, link: str) -> None:
    """An item's link falls back to the page, a next link ends the walk."""
    fake, base = upstream
    href = link.replace('"', "&quot;")
    fake.body = {"item": PAGE.replace('href="/acme/kargo-5-gundur-gelmedi-c-501"',
                                      f'href="{href}"'),
                 "next": PAGE.replace('href="?sayfa=2"', f'href="{href}"'),
                 "base": PAGE.replace("<head>", f'<head><base href="{href}">')}[where].encode()
    fake.content_type = "text/html; charset=utf-8"
    fake.requests = 0
    batch = await poll_calmly({**HTML_SOURCE, "url": base + "/acme/sikayetler"})
    assert batch is not None and [item.external_id for item in batch.items] == PAGE_1_KEYS
    assert len(batch.rejected) == 1  # the complaint without an id, once
    assert all(urlsplit(item.url).scheme in ("http", "https") for item in batch.items)
    assert batch.items[0].url == (base + "/acme/sikayetler" if where == "item"
                                  else base + "/acme/kargo-5-gundur-gelmedi-c-501")
    assert fake.requests == (1 if where == "next" else 2)
