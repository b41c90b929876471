"""Complaint sites and any web page, read with CSS selectors from the config.

A poll reads `url`, then follows the `next` link up to `max_pages` pages, stopping early
at a page that brings only ids already seen. Each `item` match is one mention; its id,
text, author, link and date are read with the per-item selectors (`sel@attr` reads an
attribute of the first match, a bare `@attr` the item's own attribute, otherwise the
text). Dates are read by `connectors.dates` in the many shapes sites print them.

Politeness: robots.txt is obeyed for the configured user agent unless `ignore_robots`,
and requests to one host are spaced by at least `host_interval`. The spacing is kept by
the connector instance, i.e. per source: it covers the robots.txt request and every page
of a poll, and polls of the same source; two sources on the same host each keep their
own spacing (give them intervals that leave room).

An `item` selector that finds nothing on the first page, once it loaded, is an error,
never an empty day: a redesign must not look like a quiet day. The rare page that
legitimately lists nothing reads as a failed poll and recovers by itself once an item
appears. (A later page that is empty or gone just ends the walk.)
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar, Literal, Self
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from protego import Protego
from pydantic import Field, field_validator, model_validator
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from connectors.base import (
    Batch,
    HttpSourceConfig,
    RateLimited,
    RawAuthor,
    RawItem,
    Rejected,
    SourceError,
)
from connectors.dates import parse_date
from connectors.http import Http, Response, retry_after_seconds, web_url
from connectors.page_ids import SeenIds, digest_key, storable_id
from connectors.text import html_to_text
from listener.config_fields import Duration, Section, TimeZoneName

ROBOTS_TTL = timedelta(hours=1)
ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
ATTRIBUTE = re.compile(r"^(?P<css>.*?)\s*@(?P<attr>[A-Za-z_:][-\w:.]*)$")
CHARSET = re.compile(rb"charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
# The WHATWG Encoding Standard decodes these labels with the Windows code page that
# extends them (browsers do the same), so a site's "ISO-8859-9" shows what its authors saw.
BROWSER_CODEC = {"iso8859-9": "cp1254", "iso8859-1": "cp1252", "ascii": "cp1252"}
# Python codecs that are no page charset: they rewrite escapes into other characters
# (NUL, lone surrogates) or refuse to decode with replacement characters.
NOT_PAGE_CODECS = frozenset({"utf-7", "unicode-escape", "raw-unicode-escape", "idna",
                             "punycode", "undefined"})

Sleep = Callable[[float], Awaitable[None]]


def split_selector(spec: str) -> tuple[str, str | None]:
    """"a.title@href" → ("a.title", "href"); "@data-id" → ("", "data-id");
    ".body" → (".body", None)."""
    match = ATTRIBUTE.match(spec.strip())
    if match:
        return match.group("css").strip(), match.group("attr")
    return spec.strip(), None


class HtmlSelectors(Section):
    """CSS selectors; `sel@attr` reads an attribute, a bare `@attr` the item's own.
    `text` may list several selectors ("h2.title, div.body"): all matches are joined."""

    item: str
    id: str
    text: str
    author: str | None = None
    link: str | None = None
    created_at: str | None = None
    next: str | None = None

    @field_validator("*")
    @classmethod
    def _valid_css(cls, spec: str | None) -> str | None:
        """A typo in a selector is a config error at startup, not a failed poll later."""
        if spec is None:
            return spec
        css, _ = split_selector(spec)
        if css:
            try:
                LexborHTMLParser("<p></p>").css(css)
            except SelectolaxError:
                raise ValueError(f"invalid CSS selector {css!r}") from None
        return spec

    @model_validator(mode="after")
    def _page_level_parts(self) -> Self:
        for name in ("item", "next"):
            spec = getattr(self, name)
            if spec is not None and not split_selector(spec)[0]:
                raise ValueError(f"`{name}` needs a CSS selector before any @attribute")
        return self


class HtmlSource(HttpSourceConfig):
    """`timezone` is the zone of dates the site prints without an offset."""

    default_channel: ClassVar[str | None] = "html"

    kind: Literal["html"]
    url: str
    selectors: HtmlSelectors
    max_pages: int = Field(1, ge=1, le=50)
    ignore_robots: bool = False
    host_interval: Duration = timedelta(seconds=5)
    timezone: TimeZoneName = "UTC"

    @field_validator("url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        return web_url(value)

    @model_validator(mode="after")
    def _pages_fit_in_timeout(self) -> Self:
        """A poll waits `host_interval` before each page: the waits alone must fit in the
        poll's `timeout`, or every poll would time out and store nothing."""
        waiting = self.max_pages * self.host_interval
        if waiting >= self.timeout:
            raise ValueError(
                f"max_pages × host_interval ({waiting.total_seconds():g}s) must be less than "
                f"timeout ({self.timeout.total_seconds():g}s): lower max_pages or "
                "host_interval, or raise timeout"
            )
        return self


class HostPacer:
    """At least `interval` seconds between two requests to one host. The sleeper and the
    monotonic clock are injected so tests check the waits without waiting. Polls of one
    source never overlap (the coordinator awaits each), so no lock is needed."""

    def __init__(self, interval: float, sleep: Sleep = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.sleep = sleep
        self.monotonic = monotonic
        self._last: dict[str, float] = {}

    async def wait(self, host: str) -> None:
        last = self._last.get(host)
        if last is not None:
            delay = last + self.interval - self.monotonic()
            if delay > 0:
                await self.sleep(delay)
        self._last[host] = self.monotonic()


@dataclass
class Page:
    tree: LexborHTMLParser
    url: str
    base: str


class HtmlConnector:
    kind: ClassVar[str] = "html"
    Config: ClassVar[type[HttpSourceConfig]] = HtmlSource
    polled: ClassVar[bool] = True

    def __init__(self, config: HtmlSource, sleep: Sleep = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic):
        self.config = config
        self.zone: tzinfo = ZoneInfo(config.timezone)
        self.http = Http(config.user_agent, config.timeout.total_seconds(),
                         credential_hint=f"that the site serves sources[{config.id}].url to "
                                         "the User-Agent in sources[].user_agent",
                         max_body=config.max_body)
        self.pacer = HostPacer(config.host_interval.total_seconds(), sleep, monotonic)
        self._robots: dict[str, tuple[datetime, Protego | None]] = {}

    @classmethod
    def from_config(cls, source: Any) -> HtmlConnector:
        return cls(source)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        """Pages from `url` on, until one brings nothing new, has no next link, or
        `max_pages` is reached. Only the first page must load and list items; a later page
        that is gone (404/410), empty, or forbidden by robots.txt ends the walk there, since
        the pages read so far are fine (sites often link one page past the last)."""
        now = now.astimezone(UTC)
        seen = load_seen(cursor)
        batch, keys = Batch(), []
        url: str | None = self.config.url
        visited: set[str] = set()
        while url is not None and len(visited) < self.config.max_pages:
            first = not visited
            if not await self._robots_allow(url, now):
                if first:
                    raise SourceError(self._forbidden(url))
                break
            visited.add(url)
            page = await self._page(url, first)
            known = seen.with_front(keys) if keys else seen  # sites repeat items on pages
            page_keys = self._read_items(page, now, known, batch, first) if page else []
            if all(key in seen or key in keys for key in page_keys):
                break  # nothing new here, so nothing newer further on
            keys += page_keys
            url = self._next_url(page) if page else None
            if url in visited:
                break
        batch.cursor = json.dumps({"seen": seen.with_front(keys).ids}, ensure_ascii=False)
        return batch

    async def _page(self, url: str, first: bool) -> Page | None:
        await self.pacer.wait(host_of(url))
        response = await self.http.request("GET", url, headers={"Accept": ACCEPT})
        if response.status in (404, 410) and not first:
            return None
        self.http.raise_for_poll(response)
        tree = LexborHTMLParser(decode_page(response.body,
                                            response.headers.get("Content-Type", "")))
        base_tag = tree.css_first("base[href]")
        base = response.url
        if base_tag is not None:
            base = web_link(response.url, base_tag.attributes.get("href") or "") or base
        return Page(tree, response.url, base)

    def _read_items(self, page: Page, now: datetime, seen: SeenIds, batch: Batch,
                    first: bool) -> list[str]:
        """Adds the page's new items and rejects to the batch; returns the keys of all its
        items in page order. An unusable item without an id is keyed by its markup, so the
        same broken item is recorded once, not at every poll."""
        selector = self.config.selectors.item
        nodes = page.tree.css(selector)
        if not nodes and first:
            raise SourceError(
                f"selector {selector!r} matched nothing on {page.url}: the page may have "
                f"been redesigned; check sources[{self.config.id}].selectors.item")
        keys = []
        for node in nodes:
            outcome = self._read_item(node, page, now)
            if isinstance(outcome, Rejected):
                key = outcome.external_id or digest_key(outcome.payload)
                fresh: list[Any] = batch.rejected
            else:
                key, fresh = outcome.external_id, batch.items
            keys.append(key)
            if key not in seen:
                fresh.append(outcome)
        return keys

    def _read_item(self, node: LexborNode, page: Page, now: datetime) -> RawItem | Rejected:
        selectors = self.config.selectors
        payload = (node.html or "")[:2000]
        raw_id = read_field(node, selectors.id)
        if not raw_id:
            return Rejected(f"no id: selector {selectors.id!r} found nothing in the item",
                            payload)
        external_id = storable_id(raw_id)
        text = read_text(node, selectors.text)
        if not text:
            return Rejected(f"no text: selector {selectors.text!r} found nothing in the item",
                            payload, external_id)
        created_at, note = self._created_at(node, now)
        link = read_field(node, selectors.link) if selectors.link else None
        return RawItem(
            external_id=external_id, text=text, created_at=created_at,
            channel=self.config.channel or self.kind, author=self._author(node, page),
            url=(web_link(page.base, link) if link else None) or page.url, note=note,
        )

    def _created_at(self, node: LexborNode, now: datetime) -> tuple[datetime, str | None]:
        """The item's date, or the fetch time with a note saying why (never a rejection:
        the complaint itself is fine, only its time is approximate)."""
        spec = self.config.selectors.created_at
        raw = read_field(node, spec) if spec else None
        if not raw:
            return now, "no date on the page: fetch time used"
        found = parse_date(raw, now, self.zone)
        if found is None:
            return now, f"unreadable date {raw[:80]!r} on the page: fetch time used"
        return found, None

    def _author(self, node: LexborNode, page: Page) -> RawAuthor:
        """The printed name; sites that hide it are one anonymous voice per host."""
        spec = self.config.selectors.author
        name = read_field(node, spec) if spec else None
        if name:
            return RawAuthor(handle=name, name=name)
        return RawAuthor(handle=host_of(page.url), name="")

    def _next_url(self, page: Page) -> str | None:
        spec = self.config.selectors.next
        if spec is None or page.tree.root is None:
            return None
        href = read_field(page.tree.root, spec)
        return web_link(page.base, href) if href else None

    async def _robots_allow(self, url: str, now: datetime) -> bool:
        if self.config.ignore_robots:
            return True
        rules = await self._robots_rules(url, now)
        return rules is None or rules.can_fetch(url, self.config.user_agent)

    def _forbidden(self, url: str) -> str:
        return (f"robots.txt of {origin_of(url)} forbids {url} for the user agent "
                f"{self.config.user_agent!r}; set ignore_robots: true on source "
                f"{self.config.id} to override (only with the site's permission)")

    async def _robots_rules(self, url: str, now: datetime) -> Protego | None:
        """The site's rules (None = no restrictions), fetched at most once an hour.

        Status handling follows Google's documented behaviour ("How Google interprets the
        robots.txt specification", developers.google.com/search/docs/crawling-indexing/
        robots/robots_txt, section "Handling of errors and HTTP status codes") and RFC 9309
        §2.3.1: any 4xx except 429, including 401 and 403, means there is no robots.txt,
        so no restrictions; 429 and 5xx mean it is unreachable, so nothing may be fetched
        for now (we fail the poll and retry later rather than assume).
        """
        origin = origin_of(url)
        cached = self._robots.get(origin)
        if cached is not None and now - cached[0] < ROBOTS_TTL:
            return cached[1]
        robots_url = f"{origin}/robots.txt"
        await self.pacer.wait(host_of(url))
        response = await self.http.request("GET", robots_url)
        rules = robots_rules(response, robots_url)
        self._robots[origin] = (now, rules)
        return rules

    async def close(self) -> None:
        await self.http.close()


def robots_rules(response: Response, robots_url: str) -> Protego | None:
    status = response.status
    if 200 <= status < 300:
        return Protego.parse(response.body.decode("utf-8", "replace"))
    if status == 429:
        wait = retry_after_seconds(response.headers)
        raise RateLimited(f"429 Too Many Requests from {robots_url}",
                          60.0 if wait is None else wait)
    if 400 <= status < 500:
        return None
    raise SourceError(
        f"robots.txt at {robots_url} answered HTTP {status}: not fetching the site until it "
        "is readable (an unreachable robots.txt means disallow, RFC 9309); "
        "ignore_robots: true overrides")


def load_seen(cursor: str | None) -> SeenIds:
    """An unreadable cursor starts over: the pages are re-read and their items are
    duplicates."""
    try:
        return SeenIds([str(key) for key in json.loads(cursor)["seen"]]) if cursor \
            else SeenIds()
    except (ValueError, TypeError, KeyError):
        return SeenIds()


def host_of(url: str) -> str:
    return (urlsplit(url).netloc or "").lower()


def web_link(base: str, href: str) -> str | None:
    """An http(s) address from a link on the page; None for what no browser could open
    ("http://[") and for other schemes (javascript:, mailto:)."""
    try:
        url = urljoin(base, href)
        scheme = urlsplit(url).scheme
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def read_field(node: LexborNode, spec: str) -> str | None:
    """One value inside an item: an attribute (`sel@attr`, `@attr`) or the first match's
    text, whitespace collapsed; None when absent or blank."""
    css, attribute = split_selector(spec)
    target = node.css_first(css) if css else node
    if target is None:
        return None
    value = target.attributes.get(attribute) if attribute else target.text(separator=" ")
    value = " ".join((value or "").split())
    return value or None


def read_text(node: LexborNode, spec: str) -> str:
    """The item's text with its paragraphs kept; every match of the selector, joined."""
    css, attribute = split_selector(spec)
    if attribute:
        return read_field(node, spec) or ""
    targets = node.css(css) if css else [node]
    parts = [html_to_text(target.html or "") for target in targets]
    return "\n\n".join(part for part in parts if part)


def decode_page(body: bytes, content_type: str) -> str:
    """The page as text: the charset of the Content-Type, else of a <meta> tag, else
    UTF-8. Undecodable bytes become U+FFFD rather than failing the page."""
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8):].decode("utf-8", "replace")
    declared = CHARSET.search(content_type.encode("latin-1", "replace")) or \
        META_CHARSET.search(body[:4096])
    codec = "utf-8"
    if declared:
        try:
            codec = codecs.lookup(declared.group(1).decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            codec = "utf-8"
    if codec in NOT_PAGE_CODECS:
        codec = "utf-8"
    try:
        return body.decode(BROWSER_CODEC.get(codec, codec), "replace")
    except LookupError:  # a bytes-to-bytes codec (base64, hex, rot13...), not a charset
        return body.decode("utf-8", "replace")
