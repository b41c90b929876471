"""YouTube: comments under the brand channel's videos, and replies posted in place.

Reading is `commentThreads` (YouTube Data API v3) with `allThreadsRelatedToChannelId`,
`order=time` (newest thread first) and page tokens, authenticated with an API key. A
thread is a top-level comment (a mention) with its replies: replies by the channel itself
are the brand's native replies (they stop the top-level comment's clock), replies by
anyone else are mentions in the same thread.

Threads are ordered by when their top-level comment was posted, and a new reply does not
move an old thread up. So each poll walks down past the newest thread it already has, to
`replies_lookback` before it, to see new replies in recent threads; the cursor remembers
the comment ids of that window, so nothing comes back twice. A thread that has more
replies than the list shows has the rest read with `comments?parentId=` when its count
changes. A walk cut short (page cap, spent quota) goes on from its page token next poll.

The API rations units per project and day (a list costs 1, a reply 50), and the day
resets at midnight Pacific Time. With `daily_units` the cursor counts what was spent
today, the interval stretches so the rest lasts until the reset, and a spent budget waits
for it instead of calling YouTube. Replies go through `comments.insert` with an OAuth
access token from `refresh_token`, cached until shortly before it expires.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator

from connectors.base import (
    AuthFailed,
    Batch,
    Malformed,
    RateLimited,
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
from connectors.budget import paced_interval
from connectors.http import DEFAULT_RETRY, Http, Response, retry_after_seconds
from connectors.text import html_to_text
from listener.config_fields import Duration

THREADS_PATH = "/youtube/v3/commentThreads"
COMMENTS_PATH = "/youtube/v3/comments"
WATCH_URL = "https://www.youtube.com/watch"
PACIFIC = ZoneInfo("America/Los_Angeles")  # when YouTube's daily quota resets
PAGE_SIZE = 100
MAX_PAGES = 10  # per poll: 1000 threads, 10 units
MAX_REPLY_PAGES = 20  # per thread and poll: 2000 replies, 20 units
LIST_COST = 1
INSERT_COST = 50
MAX_KNOWN = 2000
MAX_ID = 150
MAX_REJECTED = 50
TOKEN_MARGIN = timedelta(seconds=60)
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
KEY_REASONS = frozenset({"keyInvalid", "keyExpired", "API_KEY_INVALID"})
REPLY_KEYS = ("client_id", "client_secret", "refresh_token")


class YoutubeSource(ReplyingSourceConfig):
    """`api_key` reads; `client_id`, `client_secret` and `refresh_token` (an OAuth client
    and a token granted by the channel's owner, scope youtube.force-ssl) post replies."""

    default_channel: ClassVar[str | None] = "youtube"

    kind: Literal["youtube"]
    channel_id: str = Field(pattern=r"^UC[A-Za-z0-9_-]{22}$")
    api_key: SecretStr
    base_url: str = "https://www.googleapis.com"
    token_url: str = "https://oauth2.googleapis.com/token"
    daily_units: int | None = Field(10_000, ge=1)
    replies_lookback: Duration = timedelta(days=1)
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None

    @field_validator("base_url", "token_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://)")
        return url.rstrip("/")


# --- the quota day ---------------------------------------------------------------------------


def quota_day(moment: datetime) -> str:
    return moment.astimezone(PACIFIC).date().isoformat()


def quota_reset(moment: datetime) -> datetime:
    """The next midnight in Pacific Time (PST or PDT), in UTC: when the quota refills."""
    tomorrow = moment.astimezone(PACIFIC).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=PACIFIC).astimezone(UTC)


# --- the cursor ------------------------------------------------------------------------------


@dataclass
class Resume:
    """An unfinished walk: go on from `token` down to `floor`; `newest` is where it began."""

    token: str
    floor: float
    newest: float | None


@dataclass
class Progress:
    """What the cursor remembers. `newest`: the newest thread a finished walk reached;
    `known`: comment ids of the re-read window (id → its thread's time); `replies`: reply
    counts of threads whose replies were read in full; `rejected`: malformed items already
    recorded; `start`: the first poll's backfill limit, below which nothing is read (a
    lookback must not bring back older comments as new); `day`/`units`/`reads`/`polls`:
    today's quota use (units include replies)."""

    newest: float | None = None
    start: float | None = None
    known: dict[str, float] = field(default_factory=dict)
    replies: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    resume: Resume | None = None
    day: str = ""
    units: int = 0
    reads: int = 0
    polls: int = 0

    @classmethod
    def decode(cls, cursor: str | None) -> Progress:
        """An unreadable cursor starts over inside the backfill window: stored comments
        come back as harmless duplicates rather than the source stopping for good."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            resume = data.get("resume")
            return cls(
                newest=None if data.get("newest") is None else float(data["newest"]),
                start=None if data.get("start") is None else float(data["start"]),
                known={str(k): float(v) for k, v in (data.get("known") or {}).items()},
                replies={str(k): int(v) for k, v in (data.get("replies") or {}).items()},
                rejected=[str(k) for k in data.get("rejected") or []],
                resume=None if not resume else Resume(
                    str(resume[0]), float(resume[1]),
                    None if resume[2] is None else float(resume[2])),
                day=str(data.get("day", "")),
                units=max(0, int(data.get("units", 0))),
                reads=max(0, int(data.get("reads", 0))),
                polls=max(0, int(data.get("polls", 0))),
            )
        except (AttributeError, TypeError, ValueError, KeyError, IndexError):
            return cls()

    def encode(self) -> str:
        resume = self.resume
        return json.dumps({
            "v": 1, "newest": self.newest, "start": self.start, "known": self.known,
            "replies": self.replies, "rejected": self.rejected,
            "resume": None if resume is None else [resume.token, resume.floor, resume.newest],
            "day": self.day, "units": self.units, "reads": self.reads, "polls": self.polls,
        }, separators=(",", ":"))

    def on_day(self, now: datetime) -> Progress:
        """The quota count restarts with each Pacific day."""
        day = quota_day(now)
        return self if self.day == day else replace(self, day=day, units=0, reads=0, polls=0)

    def finish(self, reached: float | None, lookback: float) -> None:
        if reached is not None:
            self.newest = reached if self.newest is None else max(self.newest, reached)
        if self.newest is not None:
            horizon = self.newest - lookback
            self.known = {k: ts for k, ts in self.known.items() if ts >= horizon}
            threads = {k.split(".")[0] for k in self.known}
            self.replies = {k: n for k, n in self.replies.items() if k in threads}
        if len(self.known) > MAX_KNOWN:
            self.known = dict(sorted(self.known.items(), key=lambda p: p[1])[-MAX_KNOWN:])

    def remember_rejected(self, key: str) -> bool:
        """False when this malformed item was already recorded by an earlier poll."""
        if key in self.rejected:
            return False
        self.rejected = [*self.rejected, key][-MAX_REJECTED:]
        return True


@dataclass
class Walk:
    """One pass down the thread list in this poll."""

    floor: float
    token: str | None = None
    newest: float | None = None
    finished: bool = False


@dataclass
class Poll:
    now: datetime
    allowance: int | None
    batch: Batch = field(default_factory=Batch)
    items: dict[str, RawItem] = field(default_factory=dict)
    pages: int = 0
    reads: int = 0
    answered: int = 0  # list calls that succeeded
    stopped: bool = False

    def may_read(self) -> bool:
        return not self.stopped and self.pages < MAX_PAGES and \
            (self.allowance is None or self.reads < self.allowance)

    def stop_after(self, exc: SourceError) -> None:
        """A failure after something was read keeps it (the walk goes on from its page
        token next poll) instead of paying for it again; a first failure is the poll's."""
        if not self.answered:
            raise exc
        self.stopped = True
        if isinstance(exc, RateLimited):
            self.batch.not_before = self.now + timedelta(seconds=exc.retry_after)


# --- reading one thread ----------------------------------------------------------------------


@dataclass(frozen=True)
class Thread:
    id: str
    published: float
    total_replies: int
    comments: list[RawItem]  # the top-level comment first, then the replies shown
    broken: list[tuple[Any, Malformed]]  # malformed replies; their neighbours are kept
    shown_replies: int  # how many replies the list carried, well-formed or not


def read_thread(raw: Any, channel_id: str, channel: str) -> Thread:
    """A `youtube#commentThread`; Malformed names the field that is wrong. A malformed
    reply is set aside on its own, the rest of the thread is kept."""
    if not isinstance(raw, dict):
        raise Malformed("a thread that is not a JSON object")
    thread_id = youtube_id(raw.get("id"))
    if thread_id is None:
        raise Malformed("id is missing or too long")
    snippet = raw.get("snippet")
    top = snippet.get("topLevelComment") if isinstance(snippet, dict) else None
    if not isinstance(top, dict):
        raise Malformed("snippet.topLevelComment is missing", thread_id)
    video = snippet.get("videoId") if isinstance(snippet.get("videoId"), str) else None
    first = read_comment(top, channel_id, channel, thread_id, video, parent=None)
    total = snippet.get("totalReplyCount")
    total = total if isinstance(total, int) and not isinstance(total, bool) else 0
    replies = raw.get("replies")
    listed = replies.get("comments") if isinstance(replies, dict) else None
    listed = listed if isinstance(listed, list) else []
    shown, broken = read_replies(listed, channel_id, channel, first)
    return Thread(thread_id, first.created_at.timestamp(), total, [first, *shown], broken,
                  len(listed))


def read_replies(listed: list[Any], channel_id: str, channel: str,
                 top: RawItem) -> tuple[list[RawItem], list[tuple[Any, Malformed]]]:
    replies, broken = [], []
    for raw in listed:
        try:
            replies.append(read_comment(raw, channel_id, channel, top.thread or "",
                                        video_of(top.url), parent=top.external_id))
        except Malformed as problem:
            broken.append((raw, problem))
    return replies, broken


def read_comment(raw: Any, channel_id: str, channel: str, thread_id: str, video: str | None,
                 parent: str | None) -> RawItem:
    """A `youtube#comment`: a top-level comment (`parent` None) or a reply to one."""
    comment_id = youtube_id(raw.get("id")) if isinstance(raw, dict) else None
    if comment_id is None:
        raise Malformed("comment id is missing or too long",
                        thread_id if parent is None else None)
    snippet = raw.get("snippet")
    if not isinstance(snippet, dict):
        raise Malformed("a comment without a snippet", comment_id)
    created_at = published_at(snippet.get("publishedAt"), comment_id)
    author_channel = snippet.get("authorChannelId")
    author_id = author_channel.get("value") if isinstance(author_channel, dict) else None
    name = snippet.get("authorDisplayName")
    name = name if isinstance(name, str) else ""
    handle = author_id if isinstance(author_id, str) and author_id else name
    if not handle:
        raise Malformed("the author has neither a channel id nor a name", comment_id)
    video = snippet.get("videoId") if isinstance(snippet.get("videoId"), str) else video
    by_brand = handle == channel_id
    return RawItem(
        external_id=comment_id,
        text=comment_text(snippet, comment_id),
        created_at=created_at,
        channel=channel,
        author=RawAuthor(handle, name),
        url=comment_url(video, comment_id),
        thread=thread_id,
        in_reply_to=parent,
        by_brand=by_brand,
    )


def comment_text(snippet: dict[str, Any], comment_id: str) -> str:
    """`textOriginal` as typed; without it (YouTube only guarantees it to the comment's
    author), `textDisplay`, which is HTML."""
    original = snippet.get("textOriginal")
    if isinstance(original, str) and original.strip():
        return original
    shown = snippet.get("textDisplay")
    if isinstance(shown, str) and shown.strip():
        return html_to_text(shown)
    raise Malformed("textOriginal and textDisplay are both missing", comment_id)


def youtube_id(value: Any) -> str | None:
    """A thread or comment id (YouTube's are under 60 characters); anything else, an
    overlong string included, is no id the database could keep."""
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID else None


def published_at(value: Any, comment_id: str) -> datetime:
    if not isinstance(value, str):
        raise Malformed("publishedAt is missing", comment_id)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"publishedAt {value[:40]!r} is not an ISO 8601 time",
                        comment_id) from None
    if moment.tzinfo is None:
        raise Malformed(f"publishedAt {value[:40]!r} has no UTC offset", comment_id)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset
        raise Malformed(f"publishedAt {value[:40]!r} is out of range", comment_id) from None


def comment_url(video: str | None, comment_id: str) -> str | None:
    """The video page scrolled to the comment (`lc=`), as YouTube's own links do."""
    return f"{WATCH_URL}?v={video}&lc={comment_id}" if video else None


def video_of(url: str | None) -> str | None:
    values = parse_qs(urlsplit(url).query).get("v") if url else None
    return values[0] if values else None


def snippet_of(raw: Any) -> str:
    return json.dumps(raw, ensure_ascii=False, default=str)[:2000]


# --- what YouTube's errors mean ----------------------------------------------------------------


def error_reasons(response: Response) -> tuple[set[str], str]:
    """Google's `{"error": {"message", "errors": [{"reason"}], "details": [{"reason"}]}}`."""
    try:
        document = json.loads(response.body)
    except (UnicodeDecodeError, ValueError):
        return set(), ""
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return set(), ""
    reasons = {str(e.get("reason")) for key in ("errors", "details")
               for e in (error.get(key) if isinstance(error.get(key), list) else [])
               if isinstance(e, dict) and e.get("reason")}
    message = error.get("message")
    return reasons, str(message)[:300] if message else ""


def said(message: str) -> str:
    return f": {message}" if message else ""


# --- the connector ---------------------------------------------------------------------------


class YoutubeConnector:
    kind: ClassVar[str] = "youtube"
    Config: ClassVar[type[ReplyingSourceConfig]] = YoutubeSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = 10_000

    def __init__(self, config: YoutubeSource):
        self.config = config
        timeout = config.timeout.total_seconds()
        self.http = Http(config.user_agent, timeout, max_body=config.max_body)
        self.write_http = Http(config.user_agent, timeout)
        self._progress: Progress | None = None
        self._unsaved: tuple[str, int] = ("", 0)  # replies' units the cursor lacks: day, units
        self._token: Token | None = None

    @classmethod
    def from_config(cls, source: Any) -> YoutubeConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"YoutubeConnector({self.config.id!r}, channel_id={self.config.channel_id!r})"

    # reading

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        progress = self._with_reply_units(Progress.decode(cursor).on_day(now))
        self._progress = progress
        allowance = self._remaining(progress)
        if allowance is not None and allowance <= 0:
            self._unsaved = ("", 0)
            return Batch(cursor=progress.encode(), not_before=quota_reset(now))
        poll = Poll(now, allowance)
        await self._read(progress, poll)
        progress.units += poll.reads
        progress.reads += poll.reads
        progress.polls += 1
        self._unsaved = ("", 0)
        batch = poll.batch
        batch.items = sorted(poll.items.values(), key=lambda item: item.created_at)
        batch.cursor = progress.encode()
        remaining = self._remaining(progress)
        if remaining is not None and remaining <= 0:
            batch.not_before = quota_reset(now)
        return batch

    def _with_reply_units(self, progress: Progress) -> Progress:
        """Replies since the last poll spent units the stored cursor does not know of."""
        day, units = self._unsaved
        if day == progress.day:
            progress.units += units
        return progress

    async def _read(self, progress: Progress, poll: Poll) -> None:
        """Finish an unfinished walk first, then walk down from the newest thread to
        `replies_lookback` before the newest one the last finished walk reached."""
        lookback = self.config.replies_lookback.total_seconds()
        if progress.resume is not None:
            resume = progress.resume
            walk = Walk(resume.floor, resume.token, resume.newest)
            await self._walk(progress, walk, poll)
            if not walk.finished:
                progress.resume = Resume(walk.token or resume.token, resume.floor, walk.newest)
                return
            progress.resume = None
            progress.finish(walk.newest, lookback)
        if progress.start is None:
            progress.start = (poll.now - self.config.backfill).timestamp()
        floor = progress.start if progress.newest is None else \
            max(progress.start, progress.newest - lookback)
        walk = Walk(floor)
        await self._walk(progress, walk, poll)
        if walk.finished:
            progress.finish(walk.newest, lookback)
        elif walk.token is not None:
            progress.resume = Resume(walk.token, floor, walk.newest)

    async def _walk(self, progress: Progress, walk: Walk, poll: Poll) -> None:
        while poll.may_read():
            try:
                page = await self._threads_page(walk.token, poll)
                crossed = await self._take(page.get("items"), progress, walk, poll)
            except SourceError as exc:
                poll.stop_after(exc)
                return
            token = page.get("nextPageToken")
            walk.token = token if isinstance(token, str) and token else None
            if crossed or walk.token is None:
                walk.finished = True
                return

    async def _take(self, threads: Any, progress: Progress, walk: Walk, poll: Poll) -> bool:
        """Keep the threads above the walk's floor; True once one is below it (newest
        first, so the rest are older still)."""
        for raw in threads if isinstance(threads, list) else []:
            try:
                thread = read_thread(raw, self.config.channel_id, self.config.channel or "youtube")
            except Malformed as problem:
                self._reject(raw, problem, progress, poll)
                continue
            if thread.published < walk.floor:
                return True
            walk.newest = thread.published if walk.newest is None else \
                max(walk.newest, thread.published)
            comments, broken = thread.comments, thread.broken
            if thread.total_replies > thread.shown_replies and \
                    progress.replies.get(thread.id) != thread.total_replies and poll.may_read():
                comments, broken = await self._all_replies(thread, poll)
                progress.replies[thread.id] = thread.total_replies
            for raw_reply, problem in broken:
                self._reject(raw_reply, problem, progress, poll)
            for item in comments:
                if item.external_id not in progress.known:
                    progress.known[item.external_id] = thread.published
                    poll.items.setdefault(item.external_id, item)
        return False

    async def _all_replies(self, thread: Thread, poll: Poll
                           ) -> tuple[list[RawItem], list[tuple[Any, Malformed]]]:
        """The top comment and every reply of a thread whose list showed only some
        (`comments?parentId=`, 1 unit a page, at most MAX_REPLY_PAGES pages)."""
        top = thread.comments[0]
        listed: list[Any] = []
        token: str | None = None
        tokens: set[str] = set()
        while poll.may_read() and len(tokens) < MAX_REPLY_PAGES:
            params = {"part": "snippet", "parentId": thread.id, "maxResults": str(PAGE_SIZE)}
            if token:
                params["pageToken"] = token
            page = await self._list(COMMENTS_PATH, params, poll)
            items = page.get("items")
            listed.extend(items if isinstance(items, list) else [])
            token = page.get("nextPageToken") if isinstance(page.get("nextPageToken"), str) \
                else None
            if not token or token in tokens:  # a token seen before would loop for ever
                break
            tokens.add(token)
        replies, broken = read_replies(listed, self.config.channel_id, top.channel, top)
        return [top, *replies], broken

    async def _threads_page(self, token: str | None, poll: Poll) -> dict[str, Any]:
        params = {"part": "snippet,replies", "allThreadsRelatedToChannelId":
                  self.config.channel_id, "order": "time", "maxResults": str(PAGE_SIZE)}
        if token:
            params["pageToken"] = token
        poll.pages += 1
        return await self._list(THREADS_PATH, params, poll)

    async def _list(self, path: str, params: dict[str, str], poll: Poll) -> dict[str, Any]:
        """One list call (1 unit); the key goes in the query, never into a message."""
        where = f"{self.config.base_url}{path}"
        poll.reads += LIST_COST
        response = await self.http.request(
            "GET", where, params={**params, "key": secret_value(self.config.api_key)})
        if response.status >= 300:
            raise self._poll_failure(response, where, poll.now)
        try:
            document = response.json()
        except SourceError:  # its message would carry the URL, key and all
            raise SourceError(f"expected JSON from {where}, got "
                              f"{response.headers.get('Content-Type') or 'no content type'} "
                              "or a broken body") from None
        if not isinstance(document, dict):
            raise SourceError(f"expected a YouTube list from {where}, got a JSON "
                              f"{type(document).__name__}")
        poll.answered += 1
        return document

    def _poll_failure(self, response: Response, where: str, now: datetime) -> SourceError:
        status = response.status
        reasons, message = error_reasons(response)
        if reasons & QUOTA_REASONS:
            if self._progress is not None and self.config.daily_units is not None:
                self._progress.units = max(self._progress.units, self.config.daily_units)
            wait = retry_after_seconds(response.headers, now)
            return RateLimited(f"YouTube quota for today is spent ({status} from {where})"
                               f"{said(message)}; it resets at midnight Pacific Time",
                               (quota_reset(now) - now).total_seconds() if wait is None
                               else wait)
        if status == 429 or reasons & RATE_REASONS:
            wait = retry_after_seconds(response.headers, now)
            return RateLimited(f"YouTube is rate limiting ({status} from {where})"
                               f"{said(message)}", DEFAULT_RETRY if wait is None else wait)
        if status in (401, 403) or reasons & KEY_REASONS:
            return AuthFailed(
                f"YouTube refused the read with HTTP {status} from {where}{said(message)}; "
                f"check sources[].api_key of source {self.config.id!r} (YOUTUBE_API_KEY) and "
                "that the YouTube Data API v3 is enabled for its project")
        if status == 404:
            return SourceError(f"HTTP 404 from {where}{said(message)}; check channel_id "
                               f"{self.config.channel_id!r}")
        return SourceError(f"HTTP {status} from {where}{said(message)}")

    @staticmethod
    def _reject(raw: Any, problem: Malformed, progress: Progress, poll: Poll) -> None:
        payload = snippet_of(raw)
        key = problem.external_id or "sha256:" + hashlib.sha256(
            payload.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        if progress.remember_rejected(key):
            poll.batch.rejected.append(Rejected(str(problem), payload, problem.external_id))

    # the daily quota

    def _remaining(self, progress: Progress) -> int | None:
        budget = self.config.daily_units
        return None if budget is None else max(0, budget - progress.units)

    def interval(self, now: datetime) -> timedelta | None:
        """Long enough that the rest of today's units last until the reset, at the units
        per poll spent so far today; a spent budget waits for the reset."""
        if self.config.daily_units is None or self._progress is None:
            return None
        progress = self._progress.on_day(now)
        return paced_interval(self.config.interval, quota_reset(now) - now,
                              self._remaining(progress) or 0, progress.reads, progress.polls)

    def status(self, now: datetime) -> dict[str, Any]:
        """For /api/v1/sources and the budget gauge: today's units (unknown until this
        process has read the cursor)."""
        brand = {"brand_replies": {"watched": True, "accounts": [self.config.channel_id]}}
        budget = self.config.daily_units
        if budget is None:
            return brand
        used = self._progress.on_day(now).units if self._progress is not None else None
        return {**brand, "read_budget": {
            "daily_units": budget, "used": used,
            "remaining": None if used is None else max(0, budget - used),
            "resets_at": quota_reset(now).isoformat(),
        }}

    def _spend(self, units: int) -> None:
        now = datetime.now(UTC)
        if self._progress is None:
            self._progress = Progress(day=quota_day(now))
        self._progress = self._progress.on_day(now)
        self._progress.units += units
        day, unsaved = self._unsaved
        self._unsaved = (self._progress.day, units + (unsaved if day == self._progress.day
                                                      else 0))

    # replying

    def missing_reply_credentials(self) -> list[str]:
        present = {"client_id": self.config.client_id,
                   "client_secret": secret_value(self.config.client_secret),
                   "refresh_token": secret_value(self.config.refresh_token)}
        return [key for key in REPLY_KEYS if not present[key]]

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        """A reply under the top-level comment (YouTube threads are one level deep, so an
        answer to a reply goes under its thread's top comment)."""
        missing = self.missing_reply_credentials()
        if missing:
            raise ReplyRefused(401, f"set {', '.join(missing)} of source {self.config.id!r} "
                                    "to post on YouTube; nothing was sent")
        parent = target.thread or target.external_id.split(".")[0]
        body = {"snippet": {"parentId": parent, "textOriginal": text}}
        response = await self._insert(body)
        if response.status == 401:
            self._token = None
            response = await self._insert(body)
        if response.status >= 300:
            raise self._reply_refusal(response)
        self._spend(INSERT_COST)
        return self._sent(response, target)

    async def _insert(self, body: dict[str, Any]) -> Response:
        token = await self._access_token()
        try:
            return await self.write_http.request(
                "POST", f"{self.config.base_url}{COMMENTS_PATH}", params={"part": "snippet"},
                json=body, headers={"Authorization": f"Bearer {token}"})
        except SourceError as exc:
            raise ReplyRefused(504, f"no complete answer from YouTube ({exc}); the reply may "
                                    "have been posted: check the video before sending again"
                               ) from None

    async def _access_token(self) -> str:
        """The refresh-token grant; the access token is kept until shortly before it ends."""
        now = datetime.now(UTC)
        if self._token is not None and self._token.expires_at > now:
            return self._token.value
        form = {"grant_type": "refresh_token", "client_id": self.config.client_id or "",
                "client_secret": secret_value(self.config.client_secret),
                "refresh_token": secret_value(self.config.refresh_token)}
        try:
            response = await self.write_http.request("POST", self.config.token_url, data=form)
            document = response.json() if response.status < 500 else None
        except SourceError as exc:
            raise ReplyRefused(502, f"getting a YouTube access token failed ({exc}); nothing "
                                    "was sent") from None
        token = document.get("access_token") if isinstance(document, dict) else None
        if response.status >= 300 or not isinstance(token, str) or not token:
            error = document.get("error") if isinstance(document, dict) else None
            status = 502 if response.status >= 500 else 401
            raise ReplyRefused(status, f"Google refused the access token with HTTP "
                                       f"{response.status} ({str(error or 'no token')[:80]}); "
                                       "check client_id, client_secret and refresh_token of "
                                       f"source {self.config.id!r}; nothing was sent")
        lifetime = document.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) and \
            not isinstance(lifetime, bool) and math.isfinite(lifetime) else 3600.0
        self._token = Token(token, now + timedelta(seconds=seconds) - TOKEN_MARGIN)
        return token

    def _reply_refusal(self, response: Response) -> ReplyRefused:
        status = response.status
        reasons, message = error_reasons(response)
        now = datetime.now(UTC)
        if reasons & QUOTA_REASONS:
            wait = retry_after_seconds(response.headers, now)
            return ReplyRefused(429, f"YouTube quota for today is spent{said(message)}; it "
                                     "resets at midnight Pacific Time; nothing was sent",
                                (quota_reset(now) - now).total_seconds() if wait is None
                                else wait)
        if status == 429 or reasons & RATE_REASONS:
            wait = retry_after_seconds(response.headers, now)
            return ReplyRefused(429, f"YouTube is rate limiting replies{said(message)}; "
                                     "nothing was sent", DEFAULT_RETRY if wait is None else wait)
        if status in (401, 403):
            return ReplyRefused(status, f"YouTube refused the reply with HTTP {status}"
                                        f"{said(message)}; check that refresh_token of source "
                                        f"{self.config.id!r} was granted by the channel's "
                                        "owner with the youtube.force-ssl scope; nothing was "
                                        "sent")
        return ReplyRefused(status if status < 500 else 502,
                            f"YouTube refused the reply with HTTP {status}{said(message)}; "
                            "nothing was sent")

    def _sent(self, response: Response, target: ReplyTarget) -> SentReply:
        try:
            document = response.json()
        except SourceError:
            document = None
        comment_id = document.get("id") if isinstance(document, dict) else None
        if not isinstance(comment_id, str) or not comment_id:
            return SentReply("", None)  # posted (2xx), but YouTube did not say as what
        snippet = document.get("snippet") if isinstance(document.get("snippet"), dict) else {}
        video = snippet.get("videoId") if isinstance(snippet.get("videoId"), str) else \
            video_of(target.url)
        return SentReply(comment_id, comment_url(video, comment_id))

    async def close(self) -> None:
        await self.http.close()
        await self.write_http.close()

