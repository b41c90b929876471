"""RSS and Atom feeds: news alerts, review sites, anything that publishes a feed.

Each poll is a conditional GET (the ETag / Last-Modified of the previous answer go back as
If-None-Match / If-Modified-Since), so an unchanged feed costs the site a 304 and us
nothing. feedparser reads RSS 0.9x/1.0/2.0 and Atom, in any charset the response declares
(Turkish feeds still come as ISO-8859-9 or windows-1254), and keeps the entries of a feed
whose XML is broken. The cursor also remembers the ids already returned, because many
servers answer 200 with the same feed every time.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import field_validator
from selectolax.lexbor import LexborHTMLParser

from connectors.base import Batch, HttpSourceConfig, RawAuthor, RawItem, Rejected, SourceError
from connectors.dates import parse_date
from connectors.http import Http, Response, web_url
from connectors.page_ids import SeenIds, digest_key, storable_id
from connectors.text import html_to_text

ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
          "text/xml;q=0.9, */*;q=0.5")
HTML_TYPES = ("text/html", "application/xhtml+xml")
DATE_FIELDS = ("published", "updated", "created")
NO_DATE = "no date in the feed: fetch time used"


class RssSource(HttpSourceConfig):
    """`url` is the feed itself (…/feed.xml), not the page that links to it."""

    default_channel: ClassVar[str | None] = "rss"

    kind: Literal["rss"]
    url: str

    @field_validator("url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        return web_url(value)


@dataclass
class FeedCursor:
    etag: str | None = None
    modified: str | None = None
    seen: SeenIds = field(default_factory=SeenIds)

    @classmethod
    def load(cls, cursor: str | None) -> FeedCursor:
        """An unreadable cursor (hand-edited, older format) starts over: that only
        re-reads the current feed, whose entries are then duplicates."""
        try:
            data = json.loads(cursor) if cursor else {}
            return cls(data.get("etag"), data.get("modified"), SeenIds(list(data["seen"])))
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()

    def dump(self) -> str:
        return json.dumps({"etag": self.etag, "modified": self.modified,
                           "seen": self.seen.ids}, ensure_ascii=False)

    def conditional_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.modified:
            headers["If-Modified-Since"] = self.modified
        return headers


class RssConnector:
    kind: ClassVar[str] = "rss"
    Config: ClassVar[type[HttpSourceConfig]] = RssSource
    polled: ClassVar[bool] = True

    def __init__(self, config: RssSource):
        self.config = config
        self.http = Http(config.user_agent, config.timeout.total_seconds(),
                         credential_hint=f"that {config.url} is public and accepts the "
                                         f"User-Agent in sources[{config.id}].user_agent",
                         max_body=config.max_body)

    @classmethod
    def from_config(cls, source: Any) -> RssConnector:
        return cls(source)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        now = now.astimezone(UTC)
        state = FeedCursor.load(cursor)
        response = await self.http.get(
            self.config.url, headers={"Accept": ACCEPT, **state.conditional_headers()})
        if response.status == 304:
            return Batch(cursor=cursor)
        parsed = read_feed(response, self.config.id)
        batch, keys = Batch(), []
        for entry in parsed.entries:
            outcome = read_entry(entry, parsed.feed, response.url, now,
                                 self.config.channel or self.kind)
            key = outcome.external_id or digest_key(snippet(entry))
            keys.append(key)
            if key in state.seen:
                continue
            if isinstance(outcome, Rejected):
                batch.rejected.append(outcome)
            else:
                batch.items.append(outcome)
        headers = response.headers
        batch.cursor = FeedCursor(headers.get("ETag"), headers.get("Last-Modified"),
                                  state.seen.with_front(keys)).dump()
        return batch

    async def close(self) -> None:
        await self.http.close()


def read_feed(response: Response, source_id: str) -> Any:
    """feedparser's result, or SourceError when the body is not a feed at all. A feed with
    broken XML that still yields entries is kept: losing a day of mentions over one stray
    `&` helps nobody."""
    import feedparser  # here, not at import: most set-ups have no feed

    # Parse problems that do not mean the document is broken: a charset declared one way
    # and read another, or a feed served as text/plain.
    harmless = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    content_type = response.headers.get("Content-Type", "")
    parsed = feedparser.parse(io.BytesIO(response.body),  # bytes, never a path or URL
                              response_headers={"content-type": content_type} if content_type
                              else {})
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.get("version") and not parsed.entries:
        raise SourceError(not_a_feed(response, source_id, content_type, problem))
    if problem is not None and not parsed.entries and not isinstance(problem, harmless):
        raise SourceError(f"malformed feed from {response.url}: {problem}")
    return parsed


def not_a_feed(response: Response, source_id: str, content_type: str,
               problem: Exception | None) -> str:
    """Name what came instead, and for a web page the feed it advertises, if any."""
    message = (f"{response.url} did not return an RSS or Atom feed "
               f"(Content-Type: {content_type or 'none'}")
    message += f"; {problem})" if problem and not content_type.startswith(HTML_TYPES) else ")"
    if content_type.startswith(HTML_TYPES):
        advertised = advertised_feed(response)
        message += (f": it is a web page; its feed is at {advertised}" if advertised
                    else ": it is a web page; point the source at its feed, or read the "
                         "page with kind: html")
    return f"{message} (sources[{source_id}].url)"


def advertised_feed(response: Response) -> str | None:
    tree = LexborHTMLParser(response.body.decode("utf-8", "replace"))
    for link in tree.css("link[rel=alternate][href]"):
        if any(kind in (link.attributes.get("type") or "") for kind in ("rss", "atom")):
            return urljoin(response.url, link.attributes["href"] or "")
    return None


def snippet(entry: Any) -> str:
    return json.dumps(entry, default=str, ensure_ascii=False)[:2000]


def read_entry(entry: Any, feed: Any, base: str, now: datetime,
               channel: str) -> RawItem | Rejected:
    """One entry as an item; without any text it is kept as a Rejected record."""
    title = detail_text(entry.get("title_detail"), entry.get("title"))
    text = compose_text(title, entry_body(entry))
    created_at, note, raw_date = entry_date(entry, now)
    url = entry_link(entry, base)
    external_id = storable_id(entry.get("id") or url or digest_key(title, raw_date or ""))
    if not text:
        return Rejected("entry has neither a title nor any content", snippet(entry),
                        external_id)
    return RawItem(external_id=external_id, text=text, created_at=created_at,
                   channel=channel, author=entry_author(entry, feed, base), url=url,
                   note=note)


def detail_text(detail: Any, fallback: Any) -> str:
    """feedparser keeps each text's type: HTML becomes text, plain text stays as it is (an
    `<` in a plain title is a character, not markup)."""
    value = (detail or {}).get("value", fallback) or ""
    if not isinstance(value, str):
        return ""
    if (detail or {}).get("type", "text/plain") in HTML_TYPES:
        return html_to_text(value)
    return " ".join(value.split())


def entry_body(entry: Any) -> str:
    """Full content when the feed has it (Atom content, content:encoded), else the
    summary/description."""
    for content in entry.get("content") or ():
        text = detail_text(content, None)
        if text:
            return text
    return detail_text(entry.get("summary_detail"), entry.get("summary"))


def compose_text(title: str, body: str) -> str:
    """Title and body, once: feeds of short posts repeat the (truncated) text as title."""
    if not body or not title:
        return body or title
    flat_title = " ".join(title.split()).rstrip(".… ").casefold()
    if " ".join(body.split()).casefold().startswith(flat_title):
        return body
    return f"{title}\n\n{body}"


def entry_date(entry: Any, now: datetime) -> tuple[datetime, str | None, str | None]:
    """(created_at, note, the raw date text). feedparser's parsed times are UTC; a date
    it cannot read gets a second chance with the page-date reader (Turkish month names),
    and failing that the fetch time, noted."""
    fields = dict(entry)  # plain lookups: FeedParserDict maps updated → published, warning
    for name in DATE_FIELDS:
        parsed = fields.get(f"{name}_parsed")
        if parsed:
            return datetime(*parsed[:6], tzinfo=UTC), None, fields.get(name)
    raw = next((fields[name] for name in DATE_FIELDS if fields.get(name)), None)
    if raw is None:
        return now, NO_DATE, None
    found = parse_date(str(raw), now, UTC)
    if found is not None:
        return found, None, raw
    return now, f"unreadable date {str(raw)[:80]!r} in the feed: fetch time used", raw


def entry_link(entry: Any, base: str) -> str | None:
    """The entry's page, absolute. A guid that feedparser promoted to the link but that is
    not a URL ("12345") is not a link."""
    link = entry.get("link")
    if not link:
        return None
    if entry.get("guidislink") and urlsplit(link).scheme not in ("http", "https"):
        return None
    return urljoin(base, link)


def entry_author(entry: Any, feed: Any, base: str) -> RawAuthor:
    """The entry's author, else the feed's, else the feed's own title as the handle: a
    news feed without bylines is one voice."""
    for owner in (entry, feed):
        detail = owner.get("author_detail") or {}
        name = (detail.get("name") or owner.get("author") or "").strip()
        email = (detail.get("email") or "").strip() or None
        if name or email:
            return RawAuthor(handle=name or email or "", name=name, email=email)
    title = " ".join((feed.get("title") or "").split())
    return RawAuthor(handle=title or urlsplit(base).hostname or "feed", name=title)
