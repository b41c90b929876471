"""Reddit: new posts matching a search query, every new post and comment in the subreddits
you watch, and replies posted as comments.

Reads use the public JSON listings, or application-only OAuth when `client_id` and
`client_secret` are set (Reddit serves far more requests to an app than to an anonymous
client, and many server addresses get nothing at all without one). Replies need a user
context: the password grant of a "script" app for `username`.

Listings come newest first and can only be paged towards older items, so each listing's
cursor remembers the newest `created_utc` a finished walk reached and the names just below
it; a poll walks down until it passes that point (less `LOOKBACK`, because search indexes
posts late). A walk cut short by the page cap, the rate-limit budget or the time budget is
resumed from its last `after` on the next poll, so nothing between two polls is skipped.

Native replies: each brand account (`username`, and the reddit `brand_accounts` handed to
`watch_brand`) has its comments listing read too, so an answer the brand posts on Reddit
itself comes back with `by_brand=True` and stops the customer's clock even outside the
watched subreddits and the search. Any post or comment by a brand account is marked so,
whichever listing it came from.

Item links always point at https://www.reddit.com + permalink, whatever `base_url` says:
`base_url` is where Listener calls (Reddit, a proxy, a test server), the permalink is the
page an agent opens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import (
    AuthFailed,
    Batch,
    Malformed,
    RawAuthor,
    RawItem,
    Rejected,
    ReplyingSourceConfig,
    ReplyRefused,
    ReplyTarget,
    SentReply,
    SourceError,
    Token,
    secret_value,
)
from connectors.http import Http, Response
from listener.config_fields import StrList

PUBLIC_SITE = "https://www.reddit.com"
PRODUCT_AGENT = "server:listener:0.1"
PAGE_SIZE = 100
MAX_PAGES = 10  # per listing and poll; Reddit stops paging any listing at about 1000 items
LOOKBACK = 600.0  # seconds below the newest item re-read each poll: search indexes posts late
MAX_KNOWN = 500
MAX_REJECTED = 50
TOKEN_MARGIN = timedelta(seconds=60)
DEFAULT_RESET = 60.0
GONE = frozenset({"[deleted]", "[removed]"})
FULLNAME = re.compile(r"t[13]_[0-9a-z]{1,16}")
SUBREDDIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")
USERNAME = re.compile(r"[A-Za-z0-9_-]{3,20}")
WAIT_IN_WORDS = re.compile(r"(\d+)\s*(millisecond|second|minute|hour)", re.IGNORECASE)
SECONDS_PER = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600}


class RedditSource(ReplyingSourceConfig):
    """`query` searches all of Reddit (posts only: Reddit's search does not return
    comments); every post and comment in `subreddits` is a mention too. `username`'s own
    comments are read as the brand's native replies."""

    default_channel: ClassVar[str | None] = "reddit"

    kind: Literal["reddit"]
    query: str | None = Field(None, min_length=1, max_length=512)
    base_url: str = "https://www.reddit.com"
    oauth_url: str = "https://oauth.reddit.com"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    subreddits: StrList = []

    @model_validator(mode="before")
    @classmethod
    def _reddit_user_agent(cls, data: Any) -> Any:
        """Reddit throttles generic User-Agents; it asks for
        `<platform>:<app id>:<version> (by /u/<name>)`."""
        if isinstance(data, dict) and not data.get("user_agent"):
            by = f"by /u/{data['username']}" if data.get("username") else \
                "self-hosted social listening"
            return {**data, "user_agent": f"{PRODUCT_AGENT} ({by})"}
        return data

    @field_validator("base_url", "oauth_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://)")
        return url.rstrip("/")

    @field_validator("subreddits")
    @classmethod
    def _subreddit_names(cls, names: list[str]) -> list[str]:
        """`r/acme`, `/r/acme/` and `acme` all mean r/acme; each is listed once."""
        cleaned: dict[str, str] = {}
        for raw in names:
            name = raw.strip().strip("/").removeprefix("r/").removeprefix("R/")
            if not SUBREDDIT.fullmatch(name):
                raise ValueError(f"{raw!r} is not a subreddit name (letters, digits, _)")
            cleaned.setdefault(name.casefold(), name)
        return list(cleaned.values())

    @model_validator(mode="after")
    def _consistent(self) -> RedditSource:
        if not self.query and not self.subreddits:
            raise ValueError("set query, subreddits, or both")
        if self.enabled and bool(self.client_id) != bool(secret_value(self.client_secret)):
            raise ValueError("client_id and client_secret go together (a script or web app's "
                             "pair): set both for OAuth, or neither for the public listing")
        return self


@dataclass(frozen=True)
class Listing:
    """One Reddit listing read newest first; `key` names its state in the cursor. `user`
    is the brand account whose own comments it lists."""

    key: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    subreddit: str | None = None
    user: str | None = None


@dataclass
class Resume:
    """An unfinished walk: continue from `after` down to `floor`; `newest` is where it began."""

    after: str
    floor: float
    newest: float | None


@dataclass
class ListingState:
    """How far one listing has been read: `newest` is the created_utc a finished walk
    reached, `known` the names near it (re-read each poll, returned once), `rejected` the
    malformed children already recorded."""

    newest: float | None = None
    known: dict[str, float] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    resume: Resume | None = None

    def finish(self, reached: float | None) -> None:
        if reached is not None:
            self.newest = reached if self.newest is None else max(self.newest, reached)
        if self.newest is not None:
            horizon = self.newest - LOOKBACK
            self.known = {n: ts for n, ts in self.known.items() if ts >= horizon}
        if len(self.known) > MAX_KNOWN:
            keep = sorted(self.known.items(), key=lambda pair: pair[1])[-MAX_KNOWN:]
            self.known = dict(keep)

    def remember_rejected(self, key: str) -> bool:
        """False when this malformed child was already recorded by an earlier poll."""
        if key in self.rejected:
            return False
        self.rejected = [*self.rejected, key][-MAX_REJECTED:]
        return True

    def to_json(self) -> dict[str, Any]:
        resume = self.resume
        return {"newest": self.newest, "known": self.known, "rejected": self.rejected,
                "resume": None if resume is None else
                [resume.after, resume.floor, resume.newest]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ListingState:
        resume = data.get("resume")
        return cls(
            newest=None if data.get("newest") is None else float(data["newest"]),
            known={str(k): float(v) for k, v in (data.get("known") or {}).items()},
            rejected=[str(k) for k in data.get("rejected") or []],
            resume=None if not resume else Resume(
                str(resume[0]), float(resume[1]), None if resume[2] is None else float(resume[2])),
        )


@dataclass
class Walk:
    """One pass down a listing in this poll."""

    floor: float
    after: str | None = None
    newest: float | None = None
    finished: bool = False
    pages: int = 0


@dataclass
class Poll:
    """What one fetch has gathered so far, and how long it may keep calling."""

    now: datetime
    deadline: float
    batch: Batch = field(default_factory=Batch)
    items: dict[str, RawItem] = field(default_factory=dict)
    calls: int = 0


@dataclass(frozen=True)
class Page:
    children: list[Any]
    after: str | None


@dataclass(frozen=True)
class Child:
    """A well-formed listing child; `item` is None for a deleted or removed one."""

    name: str
    created: float
    item: RawItem | None


class TokenError(ValueError):
    """The token endpoint answered 200 without a usable token (e.g. invalid_grant)."""


class RedditConnector:
    kind: ClassVar[str] = "reddit"
    Config: ClassVar[type[ReplyingSourceConfig]] = RedditSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = 10_000

    def __init__(self, config: RedditSource):
        self.config = config
        timeout = config.timeout.total_seconds()
        self.http = Http(config.user_agent, timeout, "client_id and client_secret",
                         reset_after=seconds_until_reset, max_body=config.max_body)
        self.write_http = Http(config.user_agent, timeout,
                               "username, password, client_id and client_secret",
                               reset_after=seconds_until_reset)
        self.watch_brand([])
        self._app_token: Token | None = None
        self._user_token: Token | None = None
        self._remaining: float | None = None
        self._resets_at: datetime | None = None

    @classmethod
    def from_config(cls, source: Any) -> RedditConnector:
        return cls(source)

    def watch_brand(self, handles: list[str]) -> None:
        """Also read these brand accounts' comments each poll (with `username`), so the
        brand's answers on Reddit are seen wherever they are posted."""
        self.brand = brand_names(self.config.username, handles)
        self._brand_folded = frozenset(name.casefold() for name in self.brand)
        self.listings = listings_for(self.config, self.brand)

    def __repr__(self) -> str:
        return (f"RedditConnector({self.config.id!r}, query={self.config.query!r}, "
                f"subreddits={self.config.subreddits!r}, oauth={self.uses_oauth})")

    @property
    def uses_oauth(self) -> bool:
        return bool(self.config.client_id)

    # Reading -----------------------------------------------------------------------------

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        states = decode_cursor(cursor)
        poll = Poll(now, time.monotonic() + self.config.timeout.total_seconds() / 2)
        kept: dict[str, ListingState] = {}
        for listing in self.listings:
            state = states.get(listing.key) or ListingState()
            await self._read_listing(listing, state, poll)
            kept[listing.key] = state
        batch = poll.batch
        batch.items = sorted(poll.items.values(), key=lambda item: item.created_at)
        batch.cursor = encode_cursor(kept)
        if self._out_of_budget(now):
            batch.not_before = self._resets_at
        return batch

    async def _read_listing(self, listing: Listing, state: ListingState, poll: Poll) -> None:
        """Finish an unfinished walk first, then walk down from the top to the newest item
        the last finished walk reached."""
        pages = 0
        if state.resume is not None:
            resume = state.resume
            walk = Walk(resume.floor, resume.after, resume.newest)
            await self._walk(listing, state, walk, poll)
            pages = walk.pages
            if not walk.finished:
                state.resume = Resume(walk.after or resume.after, resume.floor, resume.newest)
                return
            state.resume = None
            state.finish(walk.newest)
        floor = state.newest - LOOKBACK if state.newest is not None else \
            (poll.now - self.config.backfill).timestamp()
        walk = Walk(floor, pages=pages)
        await self._walk(listing, state, walk, poll)
        if walk.finished:
            state.finish(walk.newest)
        elif walk.after is not None:
            state.resume = Resume(walk.after, floor, walk.newest)

    async def _walk(self, listing: Listing, state: ListingState, walk: Walk,
                    poll: Poll) -> None:
        while walk.pages < MAX_PAGES and self._may_call(poll):
            page = await self._page(listing, walk.after, poll)
            walk.pages += 1
            crossed = self._take(listing, page.children, state, walk, poll)
            walk.after = page.after
            if crossed or page.after is None:
                walk.finished = True
                return

    def _take(self, listing: Listing, children: list[Any], state: ListingState, walk: Walk,
              poll: Poll) -> bool:
        """Keep the children newer than the walk's floor; True once one is older (the
        listing is sorted newest first, so the rest of it is older still)."""
        for raw in children:
            try:
                child = parse_child(raw, self.config.channel or self.kind)
            except Malformed as problem:
                self._reject(raw, problem, state, poll)
                continue
            if child.created < walk.floor:
                return True
            walk.newest = child.created if walk.newest is None else \
                max(walk.newest, child.created)
            if child.name in state.known:
                continue
            state.known[child.name] = child.created
            if child.item is not None:
                poll.items.setdefault(child.name, self._marked(listing, child.item))
        return False

    def _marked(self, listing: Listing, item: RawItem) -> RawItem:
        """A brand account's post or comment is the brand's own, whatever listing it is in."""
        if listing.user or item.author.handle.casefold() in self._brand_folded:
            return replace(item, by_brand=True)
        return item

    @staticmethod
    def _reject(raw: Any, problem: Malformed, state: ListingState, poll: Poll) -> None:
        payload = json.dumps(raw, ensure_ascii=False, default=str)[:2000]
        digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
        key = problem.external_id or "sha256:" + digest[:16]
        if state.remember_rejected(key):
            poll.batch.rejected.append(Rejected(str(problem), payload, problem.external_id))

    def _may_call(self, poll: Poll) -> bool:
        """Stop when the rate-limit window is used up, or after half the source's timeout
        (the coordinator cancels a fetch at the whole of it; the walk resumes next poll)."""
        if self._out_of_budget(poll.now):
            return False
        return poll.calls == 0 or time.monotonic() < poll.deadline

    async def _page(self, listing: Listing, after: str | None, poll: Poll) -> Page:
        params = {**dict(listing.params), "limit": str(PAGE_SIZE), "raw_json": "1"}
        if after:
            params["after"] = after
        poll.calls += 1
        token = await self._read_token(poll.now)
        response = await self._get(listing, params, token, poll.now)
        if response.status == 401 and token is not None:
            self._app_token = None
            token = await self._read_token(poll.now)
            response = await self._get(listing, params, token, poll.now)
        self._raise_for_listing(listing, response)
        return read_page(response)

    async def _get(self, listing: Listing, params: dict[str, str], token: str | None,
                   now: datetime) -> Response:
        if token is None:
            url, headers = f"{self.config.base_url}{listing.path}.json", {}
        else:
            url = f"{self.config.oauth_url}{listing.path}"
            headers = {"Authorization": f"bearer {token}"}
        response = await self.http.request("GET", url, params=params, headers=headers)
        self._note_budget(response.headers, now)
        return response

    def _raise_for_listing(self, listing: Listing, response: Response) -> None:
        status, url, sub = response.status, response.url, listing.subreddit
        reason = refusal_reason(response)
        if listing.user and (status == 404 or (status == 403 and reason)):
            why = f" ({reason})" if reason else ""
            raise SourceError(f"u/{listing.user} does not exist or is suspended{why}: HTTP "
                              f"{status} from {url}; check username and brand_accounts.reddit")
        if status in (401, 403):
            if sub and reason:
                raise AuthFailed(f"{status} from {url}: r/{sub} is closed to this app "
                                 f"({reason}); remove it from subreddits")
            if self.uses_oauth:
                raise AuthFailed(f"{status} from {url}: Reddit refused the app's token; "
                                 "check client_id and client_secret")
            raise AuthFailed(f"{status} from {url}: Reddit refused the public listing (it "
                             "blocks many servers and generic User-Agents); set client_id and "
                             "client_secret to read through OAuth, and a descriptive user_agent")
        if sub and (status == 404 or (status < 300 and not redirected_within(url, sub))):
            why = f" ({reason})" if reason else ""
            raise SourceError(f"r/{sub} does not exist or is banned{why}: HTTP {status} from "
                              f"{url}; check subreddits")
        self.http.raise_for_poll(response)

    def _note_budget(self, headers: Mapping[str, str], now: datetime) -> None:
        remaining = number_or_none(headers.get("x-ratelimit-remaining"))
        if remaining is None:
            return
        reset = number_or_none(headers.get("x-ratelimit-reset"))
        self._remaining = remaining
        self._resets_at = now + timedelta(seconds=DEFAULT_RESET if reset is None else reset)

    def _out_of_budget(self, now: datetime) -> bool:
        return (self._remaining is not None and self._remaining < 1
                and self._resets_at is not None and self._resets_at > now)

    def status(self, now: datetime) -> dict[str, Any]:
        """For /api/v1/sources: whose own comments are read as the brand's replies, and the
        read budget Reddit reported with the last call (the coordinator exports it)."""
        brand = {"brand_replies": {"watched": bool(self.brand), "accounts": list(self.brand)}}
        if self._remaining is None or self._resets_at is None:
            return brand
        return {**brand, "read_budget": {"remaining": int(self._remaining),
                                         "resets_at": self._resets_at.isoformat()}}

    async def _read_token(self, now: datetime) -> str | None:
        """Application-only OAuth, fetched once and reused until shortly before it expires."""
        if not self.uses_oauth:
            return None
        if self._app_token is None or self._app_token.expires_at <= now:
            response = await self._token_request(self.http, {"grant_type": "client_credentials"})
            if response.status in (401, 403):
                raise AuthFailed(f"{response.status} from {response.url}: Reddit refused the "
                                 "app; check client_id and client_secret")
            self.http.raise_for_poll(response)
            try:
                self._app_token = read_token(response, now)
            except TokenError as exc:
                raise AuthFailed(f"{exc}; check client_id and client_secret") from None
        return self._app_token.value

    async def _token_request(self, http: Http, form: dict[str, str]) -> Response:
        pair = f"{self.config.client_id or ''}:{secret_value(self.config.client_secret)}"
        basic = "Basic " + base64.b64encode(pair.encode()).decode()
        return await http.request("POST", f"{self.config.base_url}/api/v1/access_token",
                                  data=form, headers={"Authorization": basic})

    # Replying ----------------------------------------------------------------------------

    def missing_reply_credentials(self) -> list[str]:
        config = self.config
        present = {"client_id": config.client_id,
                   "client_secret": secret_value(config.client_secret),
                   "username": config.username, "password": secret_value(config.password)}
        return [key for key, value in present.items() if not value]

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        """A comment under the mention, posted as `username`."""
        missing = self.missing_reply_credentials()
        if missing:
            raise ReplyRefused(401, f"set {', '.join(missing)} to post on Reddit; nothing sent")
        if not FULLNAME.fullmatch(target.external_id):
            raise ReplyRefused(422, f"{target.external_id!r} is not a Reddit post or comment "
                                    "id (t3_… or t1_…); nothing was sent")
        response = await self._comment(target.external_id, text)
        if response.status == 401:
            self._user_token = None
            response = await self._comment(target.external_id, text)
        refusal = self.write_http.refusal(response, "Reddit comment")
        if refusal is not None:
            raise refusal
        return sent_reply(response)

    async def _comment(self, thing_id: str, text: str) -> Response:
        token = await self._login()
        form = {"thing_id": thing_id, "text": text, "api_type": "json"}
        try:
            return await self.write_http.request(
                "POST", f"{self.config.oauth_url}/api/comment", data=form,
                headers={"Authorization": f"bearer {token}"})
        except SourceError as exc:
            raise ReplyRefused(504, f"no complete answer from Reddit ({exc}); the comment may "
                                    "have been posted: check the thread before sending again"
                               ) from None

    async def _login(self) -> str:
        """The password grant: Reddit only posts comments with a user's token."""
        now = datetime.now(UTC)
        if self._user_token is not None and self._user_token.expires_at > now:
            return self._user_token.value
        form = {"grant_type": "password", "username": self.config.username or "",
                "password": secret_value(self.config.password)}
        try:
            response = await self._token_request(self.write_http, form)
        except SourceError as exc:
            raise ReplyRefused(502, f"Reddit login failed ({exc}); nothing was sent") from None
        refusal = self.write_http.refusal(response, "Reddit login")
        if refusal is not None:
            raise refusal
        try:
            self._user_token = read_token(response, now)
        except TokenError as exc:
            raise ReplyRefused(401, f"{exc}; check username and password (an account with "
                                    "two-factor login cannot use the password grant), and that "
                                    "username is a developer of the app; nothing was sent"
                               ) from None
        except SourceError as exc:
            raise ReplyRefused(502, f"Reddit login failed ({exc}); nothing was sent") from None
        return self._user_token.value

    async def close(self) -> None:
        await self.http.close()
        await self.write_http.close()


def brand_names(username: str | None, handles: list[str]) -> list[str]:
    """`username` and the brand handles as Reddit user names, each once (Reddit names are
    case-insensitive); `u/acme` means acme, and what cannot be a Reddit name is left out."""
    names: dict[str, str] = {}
    for raw in [username or "", *handles]:
        name = raw.strip().strip("/").lstrip("@").removeprefix("u/").removeprefix("user/")
        if USERNAME.fullmatch(name):
            names.setdefault(name.casefold(), name)
    return list(names.values())


def listings_for(config: RedditSource, brand: list[str]) -> list[Listing]:
    """Search (posts only), each subreddit's new posts and new comments, then each brand
    account's own comments (its native replies)."""
    listings = []
    if config.query:
        listings.append(Listing(f"search:{config.query}", "/search",
                                (("q", config.query), ("sort", "new"), ("type", "link"))))
    for sub in config.subreddits:
        listings.append(Listing(f"r/{sub.casefold()}/new", f"/r/{sub}/new", (), sub))
        listings.append(Listing(f"r/{sub.casefold()}/comments", f"/r/{sub}/comments", (), sub))
    for name in brand:
        listings.append(Listing(f"u/{name.casefold()}/comments", f"/user/{name}/comments",
                                (("sort", "new"),), user=name))
    return listings


def read_page(response: Response) -> Page:
    """A `{"kind": "Listing", "data": {"children": [...], "after": ...}}` document, or a
    SourceError (an HTML block page, an error object)."""
    doc = response.json()
    data = doc.get("data") if isinstance(doc, dict) else None
    if not (isinstance(doc, dict) and doc.get("kind") == "Listing" and isinstance(data, dict)
            and isinstance(data.get("children"), list)):
        raise SourceError(f"expected a Reddit Listing from {response.url}, got {describe(doc)}")
    after = data.get("after")
    return Page(data["children"], after if isinstance(after, str) and after else None)


def parse_child(child: Any, channel: str) -> Child:
    """A `{"kind": "t3"|"t1", "data": {...}}` child as a mention; Malformed names the field."""
    data = child.get("data") if isinstance(child, dict) else None
    if not isinstance(data, dict):
        raise Malformed("child is not a {kind, data} object")
    name = data.get("name")
    if not isinstance(name, str) or not FULLNAME.fullmatch(name):
        raise Malformed(f"name is missing or not a post/comment id: {str(name)[:60]!r}")
    kind = child.get("kind")
    if kind not in ("t1", "t3") or not name.startswith(f"{kind}_"):
        raise Malformed(f"kind {str(kind)[:20]!r} does not match name {name}", name)
    created = created_utc(data.get("created_utc"), name)
    author = data.get("author")
    if not isinstance(author, str) or not author.strip():
        raise Malformed("author is missing", name)
    text = post_text(data, name) if kind == "t3" else string_field(data, "body", name)
    if author in GONE or text.strip() in GONE:
        return Child(name, created, None)
    item = RawItem(
        external_id=name,
        text=text,
        created_at=datetime.fromtimestamp(created, UTC),
        channel=channel,
        author=RawAuthor(author),
        url=permalink_url(data.get("permalink")),
        in_reply_to=fullname_field(data, "parent_id", name) if kind == "t1" else None,
        thread=fullname_field(data, "link_id", name) if kind == "t1" else name,
        repost=kind == "t3" and bool(data.get("crosspost_parent")),  # a crosspost: noise
    )
    return Child(name, created, item)


def created_utc(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"created_utc is missing or not a number: {str(value)[:40]!r}", name)
    try:
        datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise Malformed(f"created_utc {value!r} is not a date", name) from None
    return float(value)


def post_text(data: dict[str, Any], name: str) -> str:
    """Title, then the self text when there is one (link posts have only a title)."""
    title = string_field(data, "title", name)
    selftext = data.get("selftext") or ""
    if not isinstance(selftext, str):
        raise Malformed("selftext is not text", name)
    return f"{title}\n\n{selftext}" if selftext.strip() else title


def string_field(data: dict[str, Any], key: str, name: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise Malformed(f"{key} is missing or not text", name)
    return value


def fullname_field(data: dict[str, Any], key: str, name: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not FULLNAME.fullmatch(value):
        raise Malformed(f"{key} is not a post/comment id: {str(value)[:60]!r}", name)
    return value


def permalink_url(permalink: Any) -> str | None:
    if not isinstance(permalink, str) or not permalink:
        return None
    if permalink.startswith(("https://", "http://")):
        return permalink
    return PUBLIC_SITE + ("" if permalink.startswith("/") else "/") + permalink


def read_token(response: Response, now: datetime) -> Token:
    """`{"access_token", "expires_in", ...}`; Reddit reports a refused grant as 200 with
    `{"error": "invalid_grant"}`."""
    doc = response.json()
    if isinstance(doc, dict) and doc.get("error"):
        raise TokenError(f"Reddit refused the token request at {response.url} "
                         f"({str(doc['error'])[:80]})")
    token = doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenError(f"no access_token from {response.url}")
    lifetime = number_or_none(doc.get("expires_in")) or 3600.0
    return Token(token, now + timedelta(seconds=lifetime) - TOKEN_MARGIN)


def sent_reply(response: Response) -> SentReply:
    """The new comment from `{"json": {"errors": [], "data": {"things": [...]}}}`; Reddit
    reports most refusals as a 200 with `json.errors`."""
    try:
        doc = response.json()
    except SourceError as exc:
        raise ReplyRefused(502, f"{exc}; check the thread: the comment may have been posted"
                           ) from None
    body = doc.get("json") if isinstance(doc, dict) else None
    if not isinstance(body, dict):
        raise ReplyRefused(502, f"unexpected answer from {response.url}: {describe(doc)}; "
                                "check the thread: the comment may have been posted")
    errors = body.get("errors")
    if errors:
        raise comment_refusal(errors, body)
    data = first_thing(body.get("data"))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ReplyRefused(502, f"Reddit accepted the comment but returned no id from "
                                f"{response.url}; check the thread")
    return SentReply(name, permalink_url(data.get("permalink")))


def first_thing(data: Any) -> dict[str, Any]:
    """`data.things[0].data`, or {} when the answer has no such thing."""
    things = data.get("things") if isinstance(data, dict) else None
    thing = things[0] if isinstance(things, list) and things else None
    inner = thing.get("data") if isinstance(thing, dict) else None
    return inner if isinstance(inner, dict) else {}


def comment_refusal(errors: Any, body: dict[str, Any]) -> ReplyRefused:
    """`[["RATELIMIT", "you are doing that too much. try again in 5 minutes.", "ratelimit"]]`
    and the like: RATELIMIT is a 429 with its wait, a missing login 401, the rest 422."""
    rows = [e for e in errors if isinstance(e, list) and e] if isinstance(errors, list) else []
    code = str(rows[0][0]) if rows else "ERROR"
    words = "; ".join(": ".join(str(part) for part in row[:2]) for row in rows) or str(errors)
    words = words[:300]
    if code == "RATELIMIT":
        wait = number_or_none(body.get("ratelimit")) or wait_in_words(words)
        return ReplyRefused(429, f"Reddit is rate limiting comments from this account: {words}",
                            wait)
    if code == "USER_REQUIRED":
        return ReplyRefused(401, f"Reddit wants a logged-in user: {words}; check username "
                                 "and password")
    return ReplyRefused(422, f"Reddit refused the comment: {words}")


def wait_in_words(text: str) -> float | None:
    """'try again in 5 minutes' → 300."""
    match = WAIT_IN_WORDS.search(text)
    if match is None:
        return None
    return int(match.group(1)) * SECONDS_PER[match.group(2).lower()]


def seconds_until_reset(headers: Mapping[str, str]) -> float | None:
    """`x-ratelimit-reset` is the number of seconds until the window resets."""
    return number_or_none(headers.get("x-ratelimit-reset"))


def number_or_none(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def refusal_reason(response: Response) -> str | None:
    """Reddit's `reason` on a refused subreddit (private, quarantined, banned, gated)."""
    if response.status < 400:
        return None
    try:
        doc = json.loads(response.body)
    except (UnicodeDecodeError, ValueError):
        return None
    reason = doc.get("reason") if isinstance(doc, dict) else None
    return str(reason)[:60] if reason else None


def redirected_within(url: str, subreddit: str) -> bool:
    """Reddit answers an unknown subreddit's public listing by redirecting to a search."""
    return f"/r/{subreddit.casefold()}/" in urlsplit(url).path.casefold() + "/"


def describe(doc: Any) -> str:
    if isinstance(doc, dict):
        return "an object with keys " + ", ".join(sorted(map(str, doc))[:6]) if doc else \
            "an empty object"
    return f"a JSON {type(doc).__name__}"


def encode_cursor(states: dict[str, ListingState]) -> str:
    return json.dumps({"v": 1, "listings": {k: s.to_json() for k, s in states.items()}},
                      separators=(",", ":"))


def decode_cursor(cursor: str | None) -> dict[str, ListingState]:
    """Each listing's state; an unreadable cursor starts over from the backfill window
    rather than stopping the source for good."""
    if not cursor:
        return {}
    try:
        listings = json.loads(cursor)["listings"]
        return {str(k): ListingState.from_json(v) for k, v in listings.items()}
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return {}
