"""X (Twitter): recent search for mentions, and replies as the brand account.

Reading goes through tweepy's `AsyncClient` (`GET /2/tweets/search/recent`, app Bearer
token). X answers newest first, so one poll walks `next_token` pages downwards from the
newest post and the first page's `meta.newest_id` becomes the next `since_id`. A poll
stops early (page cap, read budget, a used-up rate-limit window, a failed later page) and
then remembers the gap: the next poll reads `since_id < id < until_id` first and only
then jumps to the newest id it saw, so nothing between the pages is ever skipped.

X's paid tiers ration reads per calendar month. With `monthly_reads` the cursor also
counts the posts read this month (UTC), the interval stretches so the rest lasts to the
month's end, and a spent budget waits for the next month instead of calling X.

Native replies: X's search only finds the brand's own replies ("@customer thanks, ...")
if they match `query`, which they usually do not. Given the brand's handles
(`watch_brand`, from `brand_accounts`), the same search call also asks for them: the query
sent is `(<query>) OR (from:acme is:reply)`, so they cost reads but no extra requests, and
the pipeline marks the customer's post responded at the reply's time.

Replies (`send_replies`) post `POST /2/tweets` with OAuth 1.0a user context (the brand
account's consumer key/secret and access token/secret) through the same client.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import aiohttp
from pydantic import Field, SecretStr, model_validator
from yarl import URL

from connectors.base import (
    AuthFailed,
    Batch,
    RateLimited,
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
from connectors.budget import paced_interval
from connectors.http import DEFAULT_RETRY, retry_after_seconds

if TYPE_CHECKING:  # imported where used: tweepy (and requests) cost memory without X
    import tweepy

MAX_PAGES = 5  # per poll: 500 posts at most, a few seconds of requests
X_MIN_RESULTS = 10  # X refuses max_results below 10
RECENT_WINDOW = timedelta(days=7) - timedelta(minutes=5)  # recent search reaches back 7 days
TWEET_FIELDS = ["created_at", "lang", "conversation_id", "referenced_tweets", "note_tweet"]
USER_FIELDS = ["public_metrics", "username", "name"]
JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+?\+)?json")
X_ESCAPES = re.compile(r"&(amp|lt|gt);")
REPLY_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
TWEEPY_LOGGER = "tweepy.asynchronous.client"
X_QUERY_LIMIT = 512  # recent search, self-serve tiers (Enterprise: 4096)
X_USERNAME = re.compile(r"^[A-Za-z0-9_]+$")


class TwitterSource(ReplyingSourceConfig):
    default_channel: ClassVar[str | None] = "twitter"

    kind: Literal["twitter"]
    query: str
    bearer_token: SecretStr
    base_url: str = "https://api.twitter.com"
    monthly_reads: int | None = Field(None, ge=1)
    max_results: int = Field(100, ge=10, le=100)
    brand_replies: bool = True
    max_query_length: int = Field(X_QUERY_LIMIT, ge=1)
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None

    @model_validator(mode="after")
    def query_fits(self) -> TwitterSource:
        """X answers a too-long query with 400 on every poll; say so at startup instead."""
        if len(self.query) > self.max_query_length:
            raise ValueError(f"query is {len(self.query)} characters; X recent search "
                             f"accepts {self.max_query_length} (max_query_length: 512 on "
                             "self-serve access, 4096 on Enterprise)")
        return self


# --- the cursor -------------------------------------------------------------------------


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_end(moment: datetime) -> datetime:
    """The first instant of the next calendar month in UTC: when X's read cap resets."""
    utc = moment.astimezone(UTC)
    year, month = (utc.year + 1, 1) if utc.month == 12 else (utc.year, utc.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def post_id(value: Any) -> str | None:
    """X ids are decimal strings (too big for a JS number); anything else is not an id."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value.isdigit() else None


@dataclass(frozen=True)
class Progress:
    """What the cursor remembers.

    `since_id`: everything up to this post has been read. `until_id`/`then_since_id`: a
    poll stopped before its last page, so the posts between `since_id` and `until_id`
    are still to read; once they are, `since_id` becomes `then_since_id` (the newest post
    that poll saw). `start_time` keeps a source's first reads inside its backfill window
    until it has seen a post. `month`/`reads`/`polls`: the read budget's count.
    """

    since_id: str | None = None
    until_id: str | None = None
    then_since_id: str | None = None
    start_time: datetime | None = None
    month: str = ""
    reads: int = 0
    polls: int = 0

    @classmethod
    def decode(cls, cursor: str | None, now: datetime, backfill: timedelta) -> Progress:
        """An unreadable cursor starts over inside the backfill window: already stored
        posts come back as harmless duplicates, and older history is never fetched."""
        fresh = cls(start_time=now - backfill, month=month_of(now))
        if not cursor:
            return fresh
        if post_id(cursor.strip()):
            return replace(fresh, since_id=cursor.strip(), start_time=None)
        try:
            data = json.loads(cursor)
            start = data.get("start_time")
            return cls(
                since_id=post_id(data.get("since_id")),
                until_id=post_id(data.get("until_id")),
                then_since_id=post_id(data.get("then_since_id")),
                start_time=aware(datetime.fromisoformat(start)) if start else None,
                month=str(data.get("month", "")),
                reads=max(0, int(data.get("reads", 0))),
                polls=max(0, int(data.get("polls", 0))),
            )
        except (AttributeError, TypeError, ValueError):
            return fresh

    def encode(self) -> str:
        data: dict[str, Any] = {
            "since_id": self.since_id, "until_id": self.until_id,
            "then_since_id": self.then_since_id,
            "start_time": self.start_time.isoformat() if self.start_time else None,
            "month": self.month, "reads": self.reads, "polls": self.polls,
        }
        return json.dumps({k: v for k, v in data.items() if v is not None},
                          separators=(",", ":"))

    def in_month(self, now: datetime) -> Progress:
        """The budget count restarts with each calendar month (UTC)."""
        month = month_of(now)
        return self if self.month == month else replace(self, month=month, reads=0, polls=0)

    def after_poll(self, newest: str | None, oldest: str | None, finished: bool,
                   reads: int) -> Progress:
        counted = replace(self, reads=self.reads + reads, polls=self.polls + 1)
        if not finished:
            return replace(counted, until_id=oldest or self.until_id,
                           then_since_id=self.then_since_id or newest)
        since = self.then_since_id or newest or self.since_id
        return replace(counted, since_id=since, until_id=None, then_since_id=None,
                       start_time=None if since else self.start_time)


# --- one page of recent search ------------------------------------------------------------


class TweetError(ValueError):
    """One post is unusable; the message says which field."""


@dataclass
class SearchPage:
    tweets: list[Any]
    users: dict[str, dict[str, Any]]
    newest_id: str | None
    oldest_id: str | None
    next_token: str | None

    @classmethod
    def read(cls, document: Any) -> SearchPage:
        """X's documented shape: `data` (posts), `includes.users`, `meta`. A partial
        `errors` list next to them (a suspended author, a deleted post) is normal."""
        if not isinstance(document, dict):
            raise SourceError(f"X recent search answered a JSON {type(document).__name__}, "
                              "not a search result")
        if "data" not in document and "meta" not in document:
            raise SourceError(f"X recent search answered no data and no meta"
                              f"{x_errors(document.get('errors'))}")
        tweets, meta = document.get("data") or [], document.get("meta") or {}
        includes = document.get("includes") or {}
        users = includes.get("users") if isinstance(includes, dict) else None
        if not isinstance(tweets, list) or not isinstance(meta, dict) or \
                not isinstance(users or [], list):
            raise SourceError("X recent search answered data, includes or meta of the wrong type")
        ids = sorted((int(i) for i in (post_id(t.get("id")) for t in tweets
                                       if isinstance(t, dict)) if i), reverse=True)
        token = meta.get("next_token")
        return cls(
            tweets=tweets,
            users={str(u["id"]): u for u in users or [] if isinstance(u, dict) and "id" in u},
            newest_id=post_id(meta.get("newest_id")) or (str(ids[0]) if ids else None),
            oldest_id=post_id(meta.get("oldest_id")) or (str(ids[-1]) if ids else None),
            next_token=token if isinstance(token, str) and token else None,
        )


def x_errors(errors: Any) -> str:
    """X's own words from an `errors` list, for a message."""
    if not isinstance(errors, list):
        return ""
    words = [str(e.get("detail") or e.get("title") or e.get("message") or "")
             for e in errors if isinstance(e, dict)]
    said = "; ".join(w for w in words if w)[:300]
    return f": {said}" if said else ""


def unescape_x(text: str) -> str:
    """X's v2 `text` escapes exactly &, < and > as entities; give back what was typed."""
    return X_ESCAPES.sub(lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m.group(1)], text)


def tweet_item(tweet: Any, users: Mapping[str, dict[str, Any]], channel: str) -> RawItem:
    """One post of `data` with its author from `includes.users`."""
    if not isinstance(tweet, dict):
        raise TweetError("a post that is not a JSON object")
    external_id = post_id(tweet.get("id"))
    if external_id is None:
        raise TweetError("id is missing or not a numeric string")
    text = tweet.get("text")
    if not isinstance(text, str):
        raise TweetError("text is missing")
    note = tweet.get("note_tweet")  # posts over 280 characters: `text` is cut short
    if isinstance(note, dict) and isinstance(note.get("text"), str) and note["text"]:
        text = note["text"]
    created_at = parse_created_at(tweet.get("created_at"))
    user = users.get(str(tweet.get("author_id")))
    username = user.get("username") if user else None
    if not isinstance(username, str) or not username:
        raise TweetError(f"author {tweet.get('author_id')!r} is not in includes.users")
    lang = tweet.get("lang")
    conversation = post_id(tweet.get("conversation_id"))
    return RawItem(
        external_id=external_id,
        text=unescape_x(text),
        created_at=created_at,
        channel=channel,
        author=RawAuthor(username, name_of(user), followers=followers_of(user)),
        url=f"https://x.com/{username}/status/{external_id}",
        lang=lang if isinstance(lang, str) and lang and lang != "und" else None,
        in_reply_to=replied_to(tweet.get("referenced_tweets")),
        thread=conversation,
        repost=retweeted(tweet.get("referenced_tweets")),
    )


def parse_created_at(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TweetError("created_at is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TweetError(f"created_at {value[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise TweetError(f"created_at {value[:40]!r} has no UTC offset")
    return moment.astimezone(UTC)


def name_of(user: Mapping[str, Any]) -> str:
    name = user.get("name")
    return name if isinstance(name, str) else ""


def followers_of(user: Mapping[str, Any]) -> int | None:
    metrics = user.get("public_metrics")
    count = metrics.get("followers_count") if isinstance(metrics, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def replied_to(references: Any) -> str | None:
    for reference in references if isinstance(references, list) else ():
        if isinstance(reference, dict) and reference.get("type") == "replied_to":
            return post_id(reference.get("id"))
    return None


def retweeted(references: Any) -> bool:
    """A retweet (`referenced_tweets` type "retweeted"): someone else's words, kept as noise.
    A quote tweet ("quoted") is the author's own post and stays a mention."""
    return any(isinstance(reference, dict) and reference.get("type") == "retweeted"
               for reference in (references if isinstance(references, list) else ()))


def tweet_snippet(tweet: Any) -> str:
    return json.dumps(tweet, ensure_ascii=False, default=str)[:2000]


# --- HTTP: where tweepy's requests go, and what its errors mean ----------------------------


class ApiHostSession:
    """What tweepy's `AsyncClient.session` is set to: requests go to `base_url`.

    tweepy hard-codes `https://api.twitter.com` + route, and only ever calls
    `session.request(method, url, params=, json=, headers=)` as an async context manager.
    This object offers exactly that call and hands it to a real `aiohttp.ClientSession`
    with the URL's scheme and host swapped for `base_url`'s (its path is kept as a
    prefix; the route and an OAuth-signed query are kept byte for byte). Composition
    rather than a `ClientSession` subclass: aiohttp deprecates subclassing and `_request`
    is private, traces cannot change a URL, and a middleware sees a request whose Host and
    connection are already fixed. tweepy signs OAuth 1.0a replies for the api.twitter.com
    URL before the swap: right for the default `base_url`, and for a proxy that forwards to
    api.twitter.com unchanged.

    A non-2xx answer whose body is not a JSON object (a proxy's HTML page, an empty 429)
    is turned into tweepy's own exception here, because tweepy would crash decoding it.
    """

    def __init__(self, base_url: str, timeout: float):
        self.base = URL(base_url.rstrip("/"))
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def rewrite(self, url: str | URL) -> URL:
        original = url if isinstance(url, URL) else URL(url)
        return URL.build(scheme=self.base.scheme, authority=self.base.raw_authority,
                         path=self.base.raw_path.rstrip("/") + original.raw_path,
                         query_string=original.raw_query_string, encoded=True)

    @asynccontextmanager
    async def request(self, method: str, url: str | URL,
                      **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.request(method, self.rewrite(url), **kwargs) as response:
            body = await response.read()
            if not 200 <= response.status < 300 and not json_object(response, body):
                raise unreadable_error(response)
            yield response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def json_object(response: aiohttp.ClientResponse, body: bytes) -> bool:
    if not JSON_TYPE.match(response.headers.get("Content-Type", "").lower()):
        return False
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


def unreadable_error(response: aiohttp.ClientResponse) -> tweepy.HTTPException:
    """The exception tweepy would raise for this status, had it been able to read it."""
    import tweepy

    content_type = response.headers.get("Content-Type") or "no content type"
    detail = {"detail": f"{content_type} body instead of X's JSON error"}
    status = response.status
    if status == 429:
        return tweepy.TooManyRequests(response, response_json=detail)
    kinds: dict[int, type[tweepy.HTTPException]] = {
        400: tweepy.BadRequest, 401: tweepy.Unauthorized, 403: tweepy.Forbidden,
        404: tweepy.NotFound}
    kind = kinds.get(status) or (tweepy.TwitterServerError if status >= 500
                                 else tweepy.HTTPException)
    return kind(response, response_json=detail)


async def json_document(response: aiohttp.ClientResponse, what: str) -> Any:
    """A successful answer's body; a wrong content type or broken JSON is a SourceError."""
    content_type = response.headers.get("Content-Type", "")
    if not JSON_TYPE.match(content_type.lower()):
        raise SourceError(f"expected JSON from X {what}, got {content_type or 'no content type'}")
    try:  # the body is already read: tweepy reads it and releases the connection
        return await response.json(content_type=None)
    except ValueError as exc:
        raise SourceError(f"malformed JSON from X {what}: {exc}") from None


def reset_at(headers: Mapping[str, str]) -> datetime | None:
    """`x-rate-limit-reset`: epoch seconds when X's current window ends."""
    try:
        return datetime.fromtimestamp(int(headers.get("x-rate-limit-reset", "")), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def rate_limit_wait(headers: Mapping[str, str], now: datetime) -> float:
    reset = reset_at(headers)
    if reset is not None:
        return max(1.0, (reset - now).total_seconds())
    retry = retry_after_seconds(headers, now)
    return DEFAULT_RETRY if retry is None else retry


def x_said(exc: tweepy.HTTPException) -> str:
    said = "; ".join(str(m) for m in exc.api_messages if m)[:300]
    return f": {said}" if said else ""


def status_of(exc: tweepy.HTTPException) -> int:
    return int(getattr(exc.response, "status", 0) or 0)


def poll_failure(exc: Exception, source_id: str, now: datetime) -> SourceError:
    """tweepy's and aiohttp's exceptions as the coordinator's typed errors."""
    import tweepy

    if isinstance(exc, tweepy.TooManyRequests):
        return RateLimited(f"X recent search: 429 Too Many Requests{x_said(exc)}",
                           rate_limit_wait(exc.response.headers, now))
    if isinstance(exc, tweepy.Unauthorized | tweepy.Forbidden):
        return AuthFailed(
            f"X refused the search with HTTP {status_of(exc)}{x_said(exc)}; check "
            f"sources[].bearer_token of source {source_id!r} (X_BEARER_TOKEN) and that its "
            "app belongs to a project with recent-search access")
    if isinstance(exc, tweepy.HTTPException):
        return SourceError(f"X recent search answered HTTP {status_of(exc)}{x_said(exc)}")
    if isinstance(exc, TimeoutError):
        return SourceError("X recent search: no answer in time (timeout)")
    return SourceError(f"X recent search: {type(exc).__name__} {exc}".strip())


def reply_refusal(exc: Exception, source_id: str) -> ReplyRefused:
    import tweepy

    if not isinstance(exc, tweepy.HTTPException):
        return ReplyRefused(502, f"posting the reply on X failed ({type(exc).__name__} {exc}); "
                                 "check the thread before sending again")
    status = status_of(exc)
    hint = ""
    if status in (401, 403):
        keys = ", ".join(f"sources[].{key}" for key in REPLY_KEYS)
        hint = f" (check {keys} of source {source_id!r}: the brand account's app keys)"
    retry = rate_limit_wait(exc.response.headers, datetime.now(UTC)) if status == 429 else None
    return ReplyRefused(status, f"X refused the reply with HTTP {status}{hint}{x_said(exc)}",
                        retry)


# --- the brand's own replies ---------------------------------------------------------------


def brand_clause(handles: list[str]) -> str:
    """`from:a is:reply`, or `(from:a OR from:b) is:reply`: X applies AND before OR, so
    several `from:` need their own parentheses. `is:reply` cannot stand alone on X, and
    with `from:` it can."""
    authors = " OR ".join(f"from:{handle}" for handle in handles)
    return f"({authors}) is:reply" if len(handles) > 1 else f"{authors} is:reply"


def with_brand_replies(query: str, handles: list[str]) -> str:
    """The configured query, or also the brand's replies; the configured query is kept
    whole in parentheses, so its own ORs and negations mean what they meant alone."""
    return f"({query}) OR ({brand_clause(handles)})" if handles else query


def x_handles(source_id: str, handles: list[str]) -> list[str]:
    """`brand_accounts` handles as X usernames (no '@', each once); a handle X could
    not have would break the query's syntax on every poll, so it stops the start."""
    names = list(dict.fromkeys(h.strip().lstrip("@") for h in handles if h.strip()))
    wrong = [name for name in names if not X_USERNAME.match(name)]
    if wrong:
        raise ValueError(f"source {source_id!r}: brand_accounts {wrong} are not X usernames "
                         "(letters, digits and _ only)")
    return names


# --- the connector ---------------------------------------------------------------------------


class TwitterConnector:
    kind: ClassVar[str] = "twitter"
    Config: ClassVar[type[ReplyingSourceConfig]] = TwitterSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = 280

    def __init__(self, config: TwitterSource):
        self.config = config
        from tweepy.asynchronous import AsyncClient

        self._api = ApiHostSession(config.base_url, config.timeout.total_seconds())
        self._client = AsyncClient(
            bearer_token=secret_value(config.bearer_token),
            consumer_key=secret_value(config.consumer_key) or None,
            consumer_secret=secret_value(config.consumer_secret) or None,
            access_token=secret_value(config.access_token) or None,
            access_token_secret=secret_value(config.access_token_secret) or None,
            return_type=aiohttp.ClientResponse,
            wait_on_rate_limit=False,
        )
        self._client.session = self._api
        self._client.user_agent = config.user_agent
        self._progress: Progress | None = None
        self._brand: frozenset[str] = frozenset()
        self._brand_handles: list[str] = []
        self.query = config.query  # what is sent: `query`, or also the brand's replies
        quiet = logging.getLogger(TWEEPY_LOGGER)
        # tweepy logs every request's headers (the Bearer token) at DEBUG.
        quiet.setLevel(max(logging.INFO, quiet.getEffectiveLevel()))

    @classmethod
    def from_config(cls, source: Any) -> TwitterConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"TwitterConnector({self.config.id!r}, base_url={self.config.base_url!r})"

    # the brand's own replies

    def watch_brand(self, handles: list[str]) -> None:
        """Read the brand accounts' replies with the same search (see the module doc).

        A combined query longer than `max_query_length` stops the start (ValueError, which
        `listener serve` reports as a config error) instead of quietly falling back to the
        plain query: the fallback would leave every mention answered on X open and
        breaching its SLA. Remedies: a shorter `query`, `max_query_length: 4096` on
        Enterprise access, or `brand_replies: false` to go without."""
        names = x_handles(self.config.id, handles)
        self._brand = frozenset(name.casefold() for name in names)
        self._brand_handles = names
        if not self.config.brand_replies:
            self.query = self.config.query
            return
        combined = with_brand_replies(self.config.query, names)
        if len(combined) > self.config.max_query_length:
            raise ValueError(
                f"source {self.config.id!r}: query with the brand's replies "
                f"`({brand_clause(names)})` added is {len(combined)} characters, over "
                f"max_query_length {self.config.max_query_length}; shorten query, or set "
                "brand_replies: false (replies made on X itself then no longer stop the SLA "
                "clock)")
        self.query = combined

    @property
    def watches_brand_replies(self) -> bool:
        return self.query != self.config.query

    # reading

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        progress = Progress.decode(cursor, now, self.config.backfill).in_month(now)
        self._progress = progress
        allowance = self._remaining(progress)
        if allowance is not None and allowance <= 0:
            return Batch(cursor=progress.encode(), not_before=month_end(now))
        batch, self._progress = await self._read_pages(progress, now, allowance)
        batch.cursor = self._progress.encode()
        return batch

    async def _read_pages(self, progress: Progress, now: datetime,
                          allowance: int | None) -> tuple[Batch, Progress]:
        """Up to MAX_PAGES pages, newest first. A failure after the first page keeps
        what was read (the gap is read next time) instead of paying for it twice."""
        batch = Batch()
        newest: str | None = None
        oldest: str | None = None
        reads, token, finished = 0, None, False
        for number in range(MAX_PAGES):
            try:
                page, headers = await self._search(progress, now, token,
                                                   self._page_size(allowance, reads))
            except SourceError as exc:
                if number == 0:
                    raise
                if isinstance(exc, RateLimited):
                    batch.not_before = now + timedelta(seconds=exc.retry_after)
                break
            newest = newest if number else page.newest_id
            oldest = page.oldest_id or oldest
            reads += len(page.tweets)
            self._collect(page, batch)
            token = page.next_token
            finished = token is None
            if headers.get("x-rate-limit-remaining") == "0":
                batch.not_before = reset_at(headers)
            if finished or batch.not_before or (allowance is not None and reads >= allowance):
                break
        batch.items.reverse()  # oldest first, as they happened
        return batch, progress.after_poll(newest, oldest, finished, reads)

    def _page_size(self, allowance: int | None, reads: int) -> int:
        if allowance is None:
            return self.config.max_results
        return max(X_MIN_RESULTS, min(self.config.max_results, allowance - reads))

    async def _search(self, progress: Progress, now: datetime, token: str | None,
                      page_size: int) -> tuple[SearchPage, Mapping[str, str]]:
        params: dict[str, Any] = {
            "max_results": page_size, "expansions": ["author_id"],
            "tweet_fields": TWEET_FIELDS, "user_fields": USER_FIELDS,
        }
        if progress.since_id:
            params["since_id"] = progress.since_id
        elif progress.start_time:
            params["start_time"] = max(progress.start_time, now - RECENT_WINDOW)
        if progress.until_id:
            params["until_id"] = progress.until_id
        if token:
            params["next_token"] = token
        import tweepy

        try:
            response = await self._client.search_recent_tweets(self.query, **params)
        except (tweepy.HTTPException, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise poll_failure(exc, self.config.id, now) from None
        page = SearchPage.read(await json_document(response, "recent search"))
        return page, response.headers

    def _collect(self, page: SearchPage, batch: Batch) -> None:
        for tweet in page.tweets:
            try:
                item = tweet_item(tweet, page.users, self.config.channel or "twitter")
                if item.author.handle.casefold() in self._brand:
                    item = replace(item, by_brand=True)
                batch.items.append(item)
            except TweetError as exc:
                batch.rejected.append(Rejected(str(exc), tweet_snippet(tweet), post_id(
                    tweet.get("id")) if isinstance(tweet, dict) else None))

    # the read budget

    def _remaining(self, progress: Progress) -> int | None:
        budget = self.config.monthly_reads
        return None if budget is None else max(0, budget - progress.reads)

    def interval(self, now: datetime) -> timedelta | None:
        """Long enough that the rest of the month's budget lasts to the month's end, at
        the posts per poll seen so far this month; a spent budget waits for the reset."""
        if self.config.monthly_reads is None or self._progress is None:
            return None
        progress = self._progress.in_month(now)
        return paced_interval(self.config.interval, month_end(now) - now,
                              self._remaining(progress) or 0, progress.reads, progress.polls)

    def status(self, now: datetime) -> dict[str, Any]:
        """For /api/v1/sources and the read-budget gauge: whether the brand's replies are
        read, and the budget (its use unknown until this process has read the cursor)."""
        brand = {"brand_replies": {"watched": self.watches_brand_replies,
                                   "accounts": list(self._brand_handles)}}
        budget = self.config.monthly_reads
        if budget is None:
            return brand
        used = self._progress.in_month(now).reads if self._progress is not None else None
        return {**brand, "read_budget": {
            "monthly_reads": budget, "used": used,
            "remaining": None if used is None else max(0, budget - used),
            "resets_at": month_end(now).isoformat(),
        }}

    # replying

    def missing_reply_credentials(self) -> list[str]:
        return [key for key in REPLY_KEYS if not secret_value(getattr(self.config, key))]

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        missing = self.missing_reply_credentials()
        if missing:
            raise ReplyRefused(401, f"source {self.config.id!r} needs {', '.join(missing)} "
                                    "to post replies on X")
        import tweepy

        try:
            response = await self._client.create_tweet(
                text=text, in_reply_to_tweet_id=target.external_id, user_auth=True)
        except (tweepy.HTTPException, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise reply_refusal(exc, self.config.id) from None
        try:
            document = await json_document(response, "create post")
        except SourceError:
            document = None
        data = document.get("data") if isinstance(document, dict) else None
        external_id = post_id(data.get("id")) if isinstance(data, dict) else None
        if external_id is None:  # posted (2xx), but X did not say under which id
            return SentReply("", None)
        return SentReply(external_id, f"https://x.com/i/web/status/{external_id}")

    async def close(self) -> None:
        await self._api.close()
