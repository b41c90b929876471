"""Mastodon: a hashtag timeline and, with an access token, the brand account's mentions
and its own replies.

Both are read forwards with `min_id` (the page immediately newer than what we have), so a
poll after a long gap walks every page in between instead of jumping to the newest 40 as
`since_id` would. The Link header's `rel="prev"` gives the next page's `min_id`; its host
is ignored and every call goes to the configured `base_url`. The very first poll reads
the newest page and walks back (`rel="next"`, `max_id`) until it is past the backfill
window. The cursor keeps the newest id per timeline (status ids for the hashtag and the
brand's own statuses, notification ids for mentions).

Native replies: with a token, the token owner's own statuses are read too (found once with
`verify_credentials`), and its replies to other accounts come back with `by_brand=True`, so
an answer the brand posts in the Mastodon app stops the customer's clock even when it
carries no hashtag and is not listed in `brand_accounts`. Other brand accounts named in
`brand_accounts` are not read (the token sees only its own account's direct and
followers-only replies, and each other account would cost a call every poll): their replies
count only when they show up in the hashtag timeline or the mentions; `status()` names
them.

Boosts come back with `repost=True` (the booster as author, the boosted post's text), so
the pipeline stores them as noise, never queued: a boost is someone sharing a post, not a
new mention, and the boosted post arrives by itself when it carries the hashtag or
mentions the brand.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, quote, urlsplit

from multidict import CIMultiDictProxy
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from connectors.base import (
    Batch,
    RawAuthor,
    RawItem,
    Rejected,
    ReplyingSourceConfig,
    ReplyRefused,
    ReplyTarget,
    SentReply,
    SourceError,
    secret_value,
)
from connectors.http import Http, Response, reply_object, validation_reason
from connectors.text import html_to_text

PAGE_SIZE = 40
TAG_PATH = "/api/v1/timelines/tag/{hashtag}"
MENTIONS_PATH = "/api/v1/notifications"
OWNER_PATH = "/api/v1/accounts/verify_credentials"
OWN_STATUSES_PATH = "/api/v1/accounts/{account_id}/statuses"
STATUSES_PATH = "/api/v1/statuses"
LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([a-z]+)"?', re.IGNORECASE)


class MastodonSource(ReplyingSourceConfig):
    """`access_token` (scopes read:accounts, read:notifications, read:statuses,
    write:statuses) adds the brand account's mentions and its own replies, and lets
    `send_replies` post; the hashtag alone needs none on most instances."""

    default_channel: ClassVar[str | None] = "mastodon"

    kind: Literal["mastodon"]
    hashtag: str
    base_url: str = "https://mastodon.social"
    access_token: SecretStr | None = None
    max_pages: int = Field(10, ge=1, le=50)

    @field_validator("hashtag")
    @classmethod
    def _bare_hashtag(cls, value: str) -> str:
        tag = value.strip().lstrip("#")
        if not tag or any(ch.isspace() for ch in tag):
            raise ValueError("give one hashtag, with or without '#', e.g. acme")
        return tag

    @field_validator("base_url")
    @classmethod
    def _instance_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (the instance, e.g. "
                             "https://mastodon.social)")
        return value.rstrip("/")


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    acct: str = Field(min_length=1, max_length=400)
    username: str = ""
    display_name: str = ""
    followers_count: int | None = Field(None, ge=0)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class Owner:
    """The account the access token belongs to: the brand account we post as."""

    id: str
    acct: str

    def is_named(self, handle: str) -> bool:
        """`acme`, `@acme` and `acme@instance` all name a local `acme`."""
        wanted = handle.strip().lstrip("@").casefold()
        acct = self.acct.casefold()
        return wanted == acct or ("@" not in acct and wanted.split("@")[0] == acct)


class StatusIn(BaseModel):
    """The fields of a Mastodon Status we use; anything else is ignored."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=200)
    created_at: AwareDatetime
    content: str = ""
    spoiler_text: str = ""
    account: AccountIn
    url: str | None = None
    uri: str | None = None
    in_reply_to_id: str | None = None
    language: str | None = None
    visibility: str = "public"
    reblog: dict[str, Any] | None = None

    @field_validator("id", "in_reply_to_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def boosted_content(reblog: dict[str, Any] | None) -> str:
    """A boost's own `content` is empty; the history shows what was boosted instead."""
    content = reblog.get("content") if reblog else None
    return content if isinstance(content, str) else ""


def id_order(status_id: str) -> tuple[int, int, str]:
    """Snowflake-like ids compare as numbers (a longer id is newer); others as text."""
    return (0, int(status_id), "") if status_id.isdigit() else (1, 0, status_id)


def newest(ids: list[str]) -> str | None:
    return max(ids, key=id_order) if ids else None


def object_id(obj: Any) -> str | None:
    value = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until `X-RateLimit-Reset`, measured against the server's own `Date` so a
    skewed local clock does not matter; None when the header is absent or unreadable."""
    reset = _datetime(headers.get("X-RateLimit-Reset"))
    if reset is None:
        return None
    reference = None
    if headers.get("Date"):
        try:
            reference = parsedate_to_datetime(headers["Date"])
        except (TypeError, ValueError):
            reference = None
    return max(0.0, (reset - (reference or datetime.now(UTC))).total_seconds())


def _datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def link_param(headers: CIMultiDictProxy[str], rel: str, name: str) -> str | None:
    """A query parameter (`min_id`, `max_id`) of the Link header's `rel` URL."""
    for header in headers.getall("Link", []):
        for url, found in LINK.findall(header):
            if found.lower() == rel:
                values = parse_qs(urlsplit(url).query).get(name)
                if values and values[0]:
                    return values[0]
    return None


def addressed(text: str, acct: str) -> str:
    """Mastodon only notifies people it sees @mentioned; a remote account needs the full
    `@user@instance`, so a bare `@user` does not count."""
    if not acct:
        return text
    mention = re.compile(rf"(?<![\w@])@{re.escape(acct)}(?![\w@]|\.\w)", re.IGNORECASE)
    return text if mention.search(text) else f"@{acct} {text}"


@dataclass
class Page:
    objects: list[Any]
    newer: str | None = None
    older: str | None = None


@dataclass
class Window:
    """The rate-limit window as the last response described it."""

    remaining: int | None = None
    wait: float | None = None

    @property
    def used_up(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def read(self, headers: Mapping[str, str]) -> None:
        try:
            self.remaining = int(headers["X-RateLimit-Remaining"])
        except (KeyError, ValueError):
            return
        self.wait = rate_limit_wait(headers)


@dataclass
class Poll:
    """What one fetch gathers across the timelines."""

    now: datetime
    items: dict[str, RawItem] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    window: Window = field(default_factory=Window)


class MastodonConnector:
    kind: ClassVar[str] = "mastodon"
    Config: ClassVar[type[ReplyingSourceConfig]] = MastodonSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = 500

    def __init__(self, config: MastodonSource):
        self.config = config
        self.http = Http(config.user_agent, config.timeout.total_seconds(),
                         credential_hint="access_token", reset_after=rate_limit_wait,
                         max_body=config.max_body)
        self.brand_handles: list[str] = []
        self._owner: Owner | None = None
        self._owner_unknown: str | None = None  # why the token owner cannot be read

    def watch_brand(self, handles: list[str]) -> None:
        """The brand's Mastodon accounts. Only the token owner's replies can be read; the
        others are kept to say so in `status()`, and count when they show up anyway."""
        self.brand_handles = list(handles)

    @classmethod
    def from_config(cls, source: Any) -> MastodonConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"MastodonConnector({self.config.id!r}, #{self.config.hashtag})"

    @property
    def _auth(self) -> dict[str, str]:
        token = secret_value(self.config.access_token)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _url(self, path: str) -> str:
        return self.config.base_url + path

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        marks = _read_cursor(cursor)
        poll = Poll(now)
        owner = await self._token_owner(poll) if self._auth else None
        tag_path = TAG_PATH.format(hashtag=quote(self.config.hashtag, safe=""))
        pages = await self._timeline(tag_path, [], marks.get("tag"), poll)
        marks["tag"] = self._take_statuses(pages, poll, marks.get("tag"))
        if self._auth and not poll.window.used_up:
            pages = await self._timeline(MENTIONS_PATH, [("types[]", "mention")],
                                         marks.get("mentions"), poll)
            marks["mentions"] = self._take_mentions(pages, poll, marks.get("mentions"))
        if owner is not None and not poll.window.used_up:
            own_path = OWN_STATUSES_PATH.format(account_id=quote(owner.id, safe=""))
            pages = await self._timeline(own_path, [("exclude_reblogs", "true")],
                                         marks.get("own"), poll)
            marks["own"] = self._take_own_replies(pages, poll, marks.get("own"), owner)
        batch = Batch(items=list(poll.items.values()), rejected=poll.rejected,
                      cursor=_write_cursor(marks))
        if poll.window.used_up:
            batch.not_before = now + timedelta(seconds=poll.window.wait or 60)
        return batch

    async def _token_owner(self, poll: Poll) -> Owner | None:
        """Who the token belongs to, asked once per process. A token without the
        read:accounts (or profile) scope still reads the rest: only the brand's own
        replies are missing, and `status()` says why."""
        if self._owner is not None or self._owner_unknown is not None:
            return self._owner
        response = await self.http.request("GET", self._url(OWNER_PATH), headers=self._auth)
        poll.window.read(response.headers)
        if response.status == 403 and b"scope" in response.body.lower():
            self._owner_unknown = ("access_token lacks the read:accounts (or profile) scope, "
                                   "so the brand's own replies are not read")
            return None
        self.http.raise_for_poll(response)
        account = response.json()
        owner_id = object_id(account)
        acct = account.get("acct") if isinstance(account, dict) else None
        if owner_id is None or not isinstance(acct, str) or not acct:
            raise SourceError(f"expected the token's account (id, acct) from {response.url}")
        self._owner = Owner(owner_id, acct)
        return self._owner

    async def _timeline(self, path: str, params: list[tuple[str, str]], since: str | None,
                        poll: Poll) -> list[Page]:
        """Forwards from `since`, page after page; or, on a first poll, back from the
        newest until past the backfill window. Stops early when the window is used up."""
        pages: list[Page] = []
        forwards = since is not None
        position = since
        for _ in range(self.config.max_pages):
            key = "min_id" if forwards else "max_id"
            page = await self._page(path, [*params, ("limit", str(PAGE_SIZE))] + (
                [(key, position)] if position else []), poll.window)
            pages.append(page)
            if len(page.objects) < PAGE_SIZE or poll.window.used_up:
                break
            if forwards:
                position = page.newer or newest(_ids(page.objects))
            elif self._before_backfill(page, poll.now):
                break
            else:
                position = page.older or min(_ids(page.objects), key=id_order, default=None)
            if position is None:
                break
        return pages

    def _before_backfill(self, page: Page, now: datetime) -> bool:
        """On a first poll: the page already reaches older than the backfill window."""
        limit = now - self.config.backfill
        for obj in page.objects:
            record = (obj.get("status") or obj) if isinstance(obj, dict) else None
            created = _datetime(record.get("created_at")) if isinstance(record, dict) else None
            if created is not None and created < limit:
                return True
        return False

    async def _page(self, path: str, params: list[tuple[str, str]], window: Window) -> Page:
        response = await self.http.get(self._url(path), params=params, headers=self._auth)
        window.read(response.headers)
        objects = response.json()
        if not isinstance(objects, list):
            raise SourceError(f"expected a JSON list from {response.url}, "
                              f"got {type(objects).__name__}")
        return Page(objects, link_param(response.headers, "prev", "min_id"),
                    link_param(response.headers, "next", "max_id"))

    def _take_statuses(self, pages: list[Page], poll: Poll, since: str | None) -> str | None:
        ids = [since] if since else []
        for page in pages:
            ids += _ids(page.objects)
            for obj in page.objects:
                self._take(obj, poll)
        return newest(ids)

    def _take_mentions(self, pages: list[Page], poll: Poll, since: str | None) -> str | None:
        """Notification ids move the cursor; the status inside is the mention."""
        ids = [since] if since else []
        for page in pages:
            ids += _ids(page.objects)
            for obj in page.objects:
                status = obj.get("status") if isinstance(obj, dict) else None
                if isinstance(status, dict):
                    self._take(status, poll)
                else:
                    poll.rejected.append(Rejected("mention notification without a status",
                                                  _snippet(obj), object_id(obj)))
        return newest(ids)

    def _take_own_replies(self, pages: list[Page], poll: Poll, since: str | None,
                          owner: Owner) -> str | None:
        """Every own status moves the cursor; only replies to someone else are kept (a
        post of its own or a thread continuing itself answers nobody)."""
        ids = [since] if since else []
        for page in pages:
            ids += _ids(page.objects)
            for obj in page.objects:
                if isinstance(obj, dict) and (
                        not obj.get("in_reply_to_id")
                        or str(obj.get("in_reply_to_account_id")) == owner.id):
                    continue
                self._take(obj, poll, by_brand=True)
        return newest(ids)

    def _take(self, obj: Any, poll: Poll, by_brand: bool = False) -> None:
        try:
            status = StatusIn.model_validate(obj)
        except ValidationError as exc:
            poll.rejected.append(
                Rejected(validation_reason(exc, "status"), _snippet(obj), object_id(obj)))
            return
        if status.id in poll.items:
            return
        owned = self._owner is not None and status.account.id == self._owner.id
        poll.items[status.id] = self._item(status, by_brand or owned)

    def _item(self, status: StatusIn, by_brand: bool = False) -> RawItem:
        text = html_to_text(status.content) or html_to_text(boosted_content(status.reblog))
        if status.spoiler_text.strip():
            text = f"CW: {status.spoiler_text.strip()}\n\n{text}".strip()
        account = status.account
        return RawItem(
            external_id=status.id,
            text=text,
            created_at=status.created_at.astimezone(UTC),
            channel=self.config.channel or self.kind,
            author=RawAuthor(account.acct, account.display_name or account.username,
                             followers=account.followers_count),
            url=status.url or status.uri,
            lang=status.language,
            in_reply_to=status.in_reply_to_id,
            by_brand=by_brand,
            repost=status.reblog is not None,
        )

    def status(self, now: datetime) -> dict[str, Any]:
        """For /api/v1/sources: whose replies made on Mastodon itself are read (the token
        owner's), which brand accounts are not, and why."""
        owner = self._owner
        if not self._auth:
            problem: str | None = ("no access_token: the brand's replies count only when they "
                                   "carry the hashtag")
        else:
            problem = self._owner_unknown
        if owner is not None:
            not_watched = [h for h in self.brand_handles if not owner.is_named(h)]
        else:
            not_watched = list(self.brand_handles) if problem else []
        return {"brand_replies": {
            "watched": bool(self._auth) and self._owner_unknown is None,
            "accounts": [owner.acct] if owner else [],
            "not_watched": not_watched,
            "problem": problem,
        }}

    def missing_reply_credentials(self) -> list[str]:
        return [] if secret_value(self.config.access_token) else ["access_token"]

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        """Answers as a reply to the status. A direct message is answered directly; any
        other post publicly, so the answer is visible where the complaint was."""
        original = await self._original(target)
        account = original.get("account")
        acct = account.get("acct") if isinstance(account, dict) else None
        body = {
            "status": addressed(text, acct or target.author_handle),
            "in_reply_to_id": target.external_id,
            "visibility": "direct" if original.get("visibility") == "direct" else "public",
        }
        key = hashlib.sha256(f"{target.external_id}\n{body['status']}".encode()).hexdigest()
        response = await self._send("POST", self._url(STATUSES_PATH), json=body,
                                    headers={**self._auth, "Idempotency-Key": key})
        refused = self.http.refusal(response, "Mastodon reply")
        if refused is not None:
            raise refused
        posted = reply_object(response, "Mastodon", "a status")
        if object_id(posted) is None:
            raise ReplyRefused(502, "Mastodon accepted the reply but its answer has no status "
                               "id; sending again is safe (same Idempotency-Key)")
        return SentReply(object_id(posted) or "", posted.get("url") or posted.get("uri"))

    async def _original(self, target: ReplyTarget) -> dict[str, Any]:
        """The status being answered, for its visibility and the author's full acct."""
        url = self._url(f"{STATUSES_PATH}/{quote(target.external_id, safe='')}")
        response = await self._send("GET", url, headers=self._auth)
        if response.status == 404:
            raise ReplyRefused(404, f"Mastodon status {target.external_id} no longer exists "
                               "or is not visible to the access_token's account; nothing sent")
        refused = self.http.refusal(response, "Mastodon reply")
        if refused is not None:
            raise refused
        return reply_object(response, "Mastodon", "a status")

    async def _send(self, method: str, url: str, **kwargs: Any) -> Response:
        try:
            return await self.http.request(method, url, **kwargs)
        except SourceError as exc:
            raise ReplyRefused(502, f"Mastodon could not be reached: {exc}") from None

    async def close(self) -> None:
        await self.http.close()


def _read_cursor(cursor: str | None) -> dict[str, str | None]:
    """`{"tag": status id, "mentions": notification id, "own": status id}`. A bare number
    is the hashtag's mark; anything unreadable starts afresh like a first poll (duplicates
    are harmless)."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    if isinstance(data, dict):
        return {k: str(data[k]) for k in ("tag", "mentions", "own") if data.get(k)}
    return {"tag": str(data)} if isinstance(data, int | str) and data else {}


def _write_cursor(marks: dict[str, str | None]) -> str | None:
    kept = {k: v for k, v in marks.items() if v}
    return json.dumps(kept, sort_keys=True) if kept else None


def _ids(objects: list[Any]) -> list[str]:
    return [i for i in map(object_id, objects) if i]


def _snippet(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)[:2000]
