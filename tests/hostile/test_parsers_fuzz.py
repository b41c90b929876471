"""Every connector's parsing fed real recorded payloads with hostile leaves swapped in
(hypothesis): a poll yields items, Rejected entries with a reason, or a SourceError the
coordinator retries; never any other exception, and every item survives normalising."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from connectors import CONNECTORS
from connectors.base import Batch, Rejected, SourceError
from connectors.mail_parse import MailError, parse_mail
from connectors.meta import WebhookBodyError
from listener.config import parse_config
from listener.pipeline.normalize import normalize
from tests.hostile.strategies import FUZZ, NASTY_TEXT, hostile_leaf, hostile_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a JSON document, the root excluded."""
    found = [path] if path else []
    children = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found += nodes(child, (*path, key))
    return found


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """The recorded document with one to three of its values hostile or missing."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        places = nodes(doc)
        if not places:
            break
        *parent_path, key = draw(st.sampled_from(places))
        parent = doc
        for step in parent_path:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(hostile_leaf())
    return doc


def recorded(kind: str, name: str) -> Any:
    return json.loads((FIXTURES / kind / name).read_text(encoding="utf-8"))


# kind: (source entry without base_url, path served, recorded body)
JSON_SOURCES: dict[str, tuple[dict[str, Any], str, Any]] = {
    "mastodon": ({"kind": "mastodon", "hashtag": "acme"}, "/api/v1/timelines/tag/acme",
                 recorded("mastodon", "tag_timeline.json")),
    "discourse": ({"kind": "discourse"}, "/posts.json", recorded("discourse", "posts.json")),
    "reddit": ({"kind": "reddit", "query": "acme"}, "/search.json",
               recorded("reddit", "search_page1.json")),
    "twitter": ({"kind": "twitter", "query": "acme", "bearer_token": "t0ken"},
                "/2/tweets/search/recent", recorded("twitter", "page1.json")),
}


class Upstream:
    """Serves whatever the current example put in `body` on every path."""

    def __init__(self) -> None:
        self.body = b""
        self.content_type = "application/json"

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(body=self.body, content_type=self.content_type)


@pytest.fixture
async def upstream(aiohttp_server: Any) -> tuple[Upstream, str]:
    fake = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    return fake, str((await aiohttp_server(app)).make_url("")).rstrip("/")


def connector_for(entry: dict[str, Any]) -> Any:
    [source] = parse_config({"sources": [{"id": "fuzzed", **entry}]}).sources
    return CONNECTORS[source.kind].from_config(source)


async def poll_calmly(entry: dict[str, Any]) -> Batch | None:
    """One poll; None when the whole page was refused as a SourceError."""
    connector = connector_for(entry)
    try:
        batch = await connector.fetch(None, NOW)
    except SourceError as exc:
        assert str(exc)
        return None
    finally:
        await connector.close()
    for item in batch.items:
        clean = normalize(item)
        assert "\x00" not in clean.text + clean.external_id + clean.author.handle
        clean.text.encode("utf-8")  # no lone surrogates left
    assert_storable(batch.rejected)
    return batch


def assert_storable(rejected: list[Rejected]) -> None:
    """What is kept of a refused item can be written to either database."""
    for entry in rejected:
        assert entry.reason
        for text in (entry.reason, entry.payload, entry.external_id or ""):
            assert "\x00" not in text
            text.encode("utf-8")


@pytest.mark.parametrize("kind", sorted(JSON_SOURCES))
async def test_each_recorded_payload_still_parses(kind: str, upstream: Any) -> None:
    fake, base = upstream
    entry, _, document = JSON_SOURCES[kind]
    fake.body = json.dumps(document).encode()
    batch = await poll_calmly({**entry, "base_url": base})
    assert batch is not None and batch.items


@pytest.mark.parametrize("kind", sorted(JSON_SOURCES))
@FUZZ
@given(data=st.data())
async def test_hostile_json_payloads_never_crash_a_poll(kind: str, upstream: Any,
                                                        data: st.DataObject) -> None:
    fake, base = upstream
    entry, _, document = JSON_SOURCES[kind]
    fake.body = json.dumps(data.draw(mutated(document)), allow_nan=True).encode()
    await poll_calmly({**entry, "base_url": base})


FEED = (FIXTURES / "rss" / "rss2.xml").read_text(encoding="utf-8")


@st.composite
def hostile_feed(draw: st.DrawFn) -> bytes:
    """The recorded RSS with some element texts replaced by hostile ones (as XML text)."""
    texts = list(re.finditer(r">([^<]+)<", FEED))
    feed = FEED
    for match in draw(st.lists(st.sampled_from(texts), min_size=1, max_size=4, unique=True)):
        hostile = draw(hostile_text()).encode("utf-8", "surrogatepass").decode("utf-8",
                                                                               "replace")
        feed = feed.replace(match.group(0), ">" + hostile.replace("<", "&lt;").replace(
            "&", "&amp;") + "<", 1)
    cut = draw(st.one_of(st.none(), st.integers(0, len(feed))))
    return feed[:cut].encode("utf-8", "surrogatepass") if cut is not None else \
        feed.encode("utf-8", "surrogatepass")


@FUZZ
@given(feed=hostile_feed())
async def test_hostile_feeds_never_crash_a_poll(upstream: Any, feed: bytes) -> None:
    fake, base = upstream
    fake.body, fake.content_type = feed, "application/rss+xml"
    await poll_calmly({"kind": "rss", "url": base + "/feed.xml"})


@st.composite
def hostile_mail(draw: st.DrawFn) -> bytes:
    header = st.sampled_from(["From", "Reply-To", "Subject", "Message-ID", "In-Reply-To",
                              "References", "Date", "Content-Type"])
    lines = {"From": "Ali <ali@example.com>", "Subject": "Kargo", "Date":
             "Mon, 23 Nov 2026 09:00:00 +0300", "Message-ID": "<m1@example.com>",
             "Content-Type": "text/plain; charset=utf-8"}
    for name in draw(st.lists(header, max_size=3)):
        lines[name] = draw(st.one_of(hostile_text(), st.sampled_from(
            ["=?utf-8?q?a=0D=0ABcc:_x@y?= <a@b.c>", "=?bogus?b?////?=", "<>" * 500,
             "multipart/mixed; boundary=", "text/html; charset=x-unknown"])))
    body = draw(st.one_of(hostile_text(), st.sampled_from(NASTY_TEXT)))
    head = "\r\n".join(f"{k}: {v}" for k, v in lines.items())
    return (head + "\r\n\r\n" + body).encode("utf-8", "surrogatepass")


@FUZZ
@given(raw=st.one_of(hostile_mail(), st.binary(max_size=300)))
def test_hostile_mail_is_parsed_or_refused_with_a_reason(raw: bytes) -> None:
    try:
        mail = parse_mail(raw)
    except MailError as exc:
        assert str(exc)
        return
    mail.text.encode("utf-8", "surrogatepass")
    assert "@" in mail.sender


META_DELIVERY = {"object": "instagram", "entry": [{"id": "17841400000000000", "time": 1,
                 "changes": [{"field": "comments", "value": {
                     "from": {"id": "9001", "username": "deniz"},
                     "media": {"id": "1790", "media_product_type": "FEED"},
                     "id": "1801", "text": "Kargom nerede?"}}]}]}


@pytest.mark.parametrize("kind", ["instagram", "facebook"])
@FUZZ
@given(data=st.data())
async def test_hostile_meta_deliveries_are_items_rejects_or_a_clear_refusal(
        kind: str, upstream: Any, data: st.DataObject) -> None:
    """Instagram looks a comment's media up: the local upstream answers with nonsense."""
    fake, base = upstream
    fake.body = json.dumps(data.draw(st.sampled_from([{}, {"username": "\x00"}, []]))).encode()
    delivery = {**META_DELIVERY, "object": "page" if kind == "facebook" else "instagram"}
    connector = connector_for({"kind": kind, "access_token": "t0ken", "app_secret": "s3cret",
                               "page_id" if kind == "facebook" else "account_id": "1784",
                               "base_url": base})
    body = json.dumps(data.draw(mutated(delivery)), allow_nan=True).encode()
    try:
        items, rejected = await connector.webhook_items(body, NOW)
    except WebhookBodyError as exc:
        assert str(exc)
        return
    finally:
        await connector.close()
    assert_storable(rejected)
    for item in items:
        normalize(item).text.encode("utf-8")
