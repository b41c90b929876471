"""Google Play: the app's reviews that have text, through the Play Developer API's
"Reply to Reviews" endpoints, and answers posted in place.

The API returns only the last week, newest change first, so the cursor is the newest
last-modified time seen (seconds and nanos, as Google gives it) plus the ids of what was
read at exactly that instant. A poll walks pages until a whole page is older than that.

One review is one conversation (`thread` = reviewId). Its first text is the mention
`reviewId`. A user who edits the review after the brand answered writes again: that
version is a new item `reviewId:<lastModified>` in the same thread, which the pipeline
treats as a follow-up (the `next_response` clock), never a second complaint. An edit made
before any answer keeps the first version's mention (its id is the review's). The
developer's reply (`developerComment`) comes back as the brand's native reply, which stops
the clock of every earlier unanswered version.

Auth is a service-account key file through google-auth (its transport is synchronous, so
the token refresh runs in a thread). Quotas: 200 list calls an hour and 2,000 replies a
day; `reads_per_hour` paces the polls (see `interval`) and a spent hour stops paging.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    require_file,
)
from connectors.http import Http, Response, reply_object, validation_reason, web_url
from listener.config_fields import Duration

SCOPE = "https://www.googleapis.com/auth/androidpublisher"
REVIEWS_PATH = "/androidpublisher/v3/applications/{package}/reviews"
STORE_URL = "https://play.google.com/store/apps/details?id={package}&reviewId={review}"
PAGE_SIZE = 100
REPLY_LIMIT = 350
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
VERSION_SUFFIX = re.compile(r":(?:reply:)?\d+\.\d{9}$")
QUOTA_REASONS = ("rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded")
LAST_SECOND = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())  # later is no datetime
MAX_ID = 150


class GooglePlaySource(ReplyingSourceConfig):
    """`service_account_file`: the JSON key of a Google Cloud service account invited in
    the Play Console with "Reply to reviews" (see docs/platforms/google_play.md)."""

    default_channel: ClassVar[str | None] = "app_review"

    kind: Literal["google_play"]
    package: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
    service_account_file: str = Field(min_length=1)
    base_url: str = "https://androidpublisher.googleapis.com"
    interval: Duration = timedelta(hours=1)
    translation_language: str | None = Field(None, pattern=r"^[a-z]{2,3}([_-][A-Za-z]{2})?$")
    reads_per_hour: int = Field(200, ge=1)
    replies_per_day: int = Field(2000, ge=1)
    max_pages: int = Field(20, ge=1, le=200)

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return web_url(value).rstrip("/")


class Stamp(BaseModel):
    """Google's Timestamp: seconds (a JSON string or number) and nanos."""

    model_config = ConfigDict(extra="ignore")
    seconds: int = Field(ge=0, le=LAST_SECOND)
    nanos: int = Field(0, ge=0, lt=1_000_000_000)

    @property
    def key(self) -> tuple[int, int]:
        return (self.seconds, self.nanos)

    @property
    def label(self) -> str:
        return f"{self.seconds}.{self.nanos:09d}"

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, UTC) + timedelta(
            microseconds=self.nanos // 1000)


class DeviceIn(BaseModel):
    """Google's camelCase field names, as the API spells them."""

    model_config = ConfigDict(extra="ignore")
    productName: str | None = None


class UserCommentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1, max_length=100_000)
    lastModified: Stamp
    starRating: int = Field(ge=1, le=5)
    reviewerLanguage: str | None = None
    device: str | None = None
    appVersionName: str | None = None
    deviceMetadata: DeviceIn | None = None


class DeveloperCommentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = ""
    lastModified: Stamp


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reviewId: str = Field(min_length=1, max_length=MAX_ID)
    authorName: str = Field("", max_length=200)
    comments: list[dict[str, Any]] = Field(min_length=1)

    def parts(self) -> tuple[UserCommentIn, DeveloperCommentIn | None]:
        """The user's text and the developer's reply, wherever they sit in `comments`."""
        user = developer = None
        for comment in self.comments:
            if "userComment" in comment and user is None:
                user = UserCommentIn.model_validate(comment["userComment"])
            elif "developerComment" in comment and developer is None:
                developer = DeveloperCommentIn.model_validate(comment["developerComment"])
        if user is None:
            raise ValueError("review without a userComment")
        return user, developer


@dataclass
class Cursor:
    """The newest last-modified instant read, and the ids read at exactly that instant."""

    at: tuple[int, int] = (0, 0)
    ids: frozenset[str] = frozenset()

    def is_new(self, at: tuple[int, int], external_id: str) -> bool:
        return at > self.at or (at == self.at and external_id not in self.ids)

    def advanced(self, seen: list[tuple[tuple[int, int], str]]) -> Cursor:
        if not seen:
            return self
        top = max(at for at, _ in seen)
        if top < self.at:
            return self
        ids = {i for at, i in seen if at == top} | (set(self.ids) if top == self.at else set())
        return Cursor(top, frozenset(ids))

    def dump(self) -> str | None:
        if self.at == (0, 0):
            return None
        return json.dumps({"seconds": self.at[0], "nanos": self.at[1],
                           "ids": sorted(self.ids)}, sort_keys=True)

    @classmethod
    def load(cls, text: str | None) -> Cursor:
        """Anything unreadable starts afresh: the API only has a week, duplicates are
        dropped by id."""
        try:
            data = json.loads(text) if text else None
            at = (int(data["seconds"]), int(data.get("nanos", 0)))
            ids = frozenset(str(i) for i in data.get("ids", []))
        except (TypeError, ValueError, KeyError, AttributeError, json.JSONDecodeError):
            return cls()
        return cls(at, ids)


def review_id_of(target: ReplyTarget) -> str:
    """The review a mention belongs to: its thread, else its id without a version."""
    return target.thread or VERSION_SUFFIX.sub("", target.external_id)


def quota_refusal(response: Response) -> bool:
    """Google reports a spent quota as 403 (or 429) with a reason in the body."""
    body = response.body[:2000].decode("utf-8", "replace")
    return response.status in (403, 429) and any(r in body for r in QUOTA_REASONS)


class Calls:
    """Calls made in a sliding window, for a quota that counts them per hour or day."""

    def __init__(self, limit: int, window: timedelta):
        self.limit, self.window = limit, window
        self.times: deque[datetime] = deque()

    def used(self, now: datetime) -> int:
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()
        return len(self.times)

    def left(self, now: datetime) -> int:
        return max(0, self.limit - self.used(now))

    def frees_at(self, now: datetime) -> datetime:
        return self.times[0] + self.window if self.used(now) else now

    def add(self, now: datetime) -> None:
        self.times.append(now)


class GooglePlayConnector:
    kind: ClassVar[str] = "google_play"
    Config: ClassVar[type[ReplyingSourceConfig]] = GooglePlaySource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = REPLY_LIMIT

    def __init__(self, config: GooglePlaySource):
        require_file("service_account_file", config.service_account_file,
                     "the JSON key of the service account")
        self.config = config
        self.http = Http(config.user_agent, config.timeout.total_seconds(),
                         credential_hint="service_account_file", max_body=config.max_body)
        self._credentials: Any = None
        self.reads = Calls(config.reads_per_hour, HOUR)
        self.replies = Calls(config.replies_per_day, DAY)
        self._pages_per_poll: deque[int] = deque(maxlen=24)

    @classmethod
    def from_config(cls, source: Any) -> GooglePlayConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"GooglePlayConnector({self.config.id!r}, {self.config.package})"

    @property
    def _reviews_url(self) -> str:
        return self.config.base_url + REVIEWS_PATH.format(
            package=quote(self.config.package, safe=""))

    # auth ---------------------------------------------------------------------------------

    async def _token(self, renew: bool = False) -> str:
        """An access token for the service account, refreshed when missing, expired or
        refused (`renew`). google-auth's transport is synchronous: it runs in a thread."""
        from google.auth import exceptions as google_errors
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        if self._credentials is None:
            try:
                self._credentials = service_account.Credentials.from_service_account_file(
                    self.config.service_account_file, scopes=[SCOPE])
            except (OSError, ValueError, KeyError) as exc:
                raise AuthFailed(f"cannot read the service account key "
                                 f"({type(exc).__name__}); check service_account_file") from None
        credentials = self._credentials
        if renew or not credentials.valid:
            try:
                await asyncio.to_thread(credentials.refresh, Request())
            except google_errors.RefreshError as exc:
                raise AuthFailed(f"Google refused the service account's token request "
                                 f"({str(exc)[:200]}); check service_account_file") from None
            except google_errors.TransportError as exc:
                raise SourceError(f"Google's token endpoint could not be reached: "
                                  f"{str(exc)[:200]}") from None
        return credentials.token

    async def _call(self, method: str, url: str, **kwargs: Any) -> Response:
        """One API call with the token; a 401 (expired or revoked token) renews the token
        once and tries again."""
        token = await self._token()
        response = await self.http.request(
            method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status == 401:
            token = await self._token(renew=True)
            response = await self.http.request(
                method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        return response

    # polling ------------------------------------------------------------------------------

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        mark = Cursor.load(cursor)
        batch = Batch()
        seen: list[tuple[tuple[int, int], str]] = []
        token: str | None = None
        pages, complete = 0, False
        while pages < self.config.max_pages:
            if not self.reads.left(now):
                batch.not_before = self.reads.frees_at(now)
                break
            reviews, token = await self._page(token, now)
            pages += 1
            older = True
            for obj in reviews:
                older &= self._take(obj, mark, batch, seen)
            if not token or older:
                complete = True
                break
        self._pages_per_poll.append(max(pages, 1))
        # A walk cut short leaves a gap between the cursor and what it read: keep the old
        # cursor so the next poll reads the gap again (duplicates are dropped by id).
        batch.cursor = (mark.advanced(seen) if complete else mark).dump()
        return batch

    async def _page(self, token: str | None, now: datetime) -> tuple[list[Any], str | None]:
        params = {"maxResults": str(PAGE_SIZE)}
        if token:
            params["token"] = token
        if self.config.translation_language:
            params["translationLanguage"] = self.config.translation_language
        self.reads.add(now)
        response = await self._call("GET", self._reviews_url, params=params)
        if quota_refusal(response):
            raise RateLimited(f"Play API quota spent ({response.status} from {response.url})",
                              (self.reads.frees_at(now) - now).total_seconds() or 60.0)
        if response.status == 403:
            raise AuthFailed(f"403 from {response.url}: the service account may not read this "
                             "app's reviews; check service_account_file and its Play Console "
                             "permissions, and package")
        self.http.raise_for_poll(response)
        data = response.json()
        if not isinstance(data, dict):
            raise SourceError(f"expected a JSON object from {response.url}")
        reviews = data.get("reviews") or []
        if not isinstance(reviews, list):
            raise SourceError(f"expected a list of reviews from {response.url}")
        paging = data.get("tokenPagination")
        token = paging.get("nextPageToken") if isinstance(paging, dict) else None
        return reviews, token if isinstance(token, str) and token else None

    def _take(self, obj: Any, mark: Cursor, batch: Batch,
              seen: list[tuple[tuple[int, int], str]]) -> bool:
        """Adds what is new in one review; True when all of it is older than the cursor."""
        try:
            review = ReviewIn.model_validate(obj)
            user, developer = review.parts()
        except ValidationError as exc:
            batch.rejected.append(Rejected(validation_reason(exc, "review"), _snippet(obj),
                                           _review_id(obj)))
            return False
        except ValueError as exc:
            batch.rejected.append(Rejected(str(exc), _snippet(obj), _review_id(obj)))
            return False
        rid = review.reviewId
        edited_after_reply = developer is not None and \
            user.lastModified.key > developer.lastModified.key
        external_id = f"{rid}:{user.lastModified.label}" if edited_after_reply else rid
        old = True
        versions = [(user.lastModified.key, external_id, self._review(review, user,
                                                                      external_id))]
        if developer is not None:
            reply_id = f"{rid}:reply:{developer.lastModified.label}"
            versions.append((developer.lastModified.key, reply_id,
                             self._reply(review, developer, reply_id)))
        for at, item_id, item in versions:
            if mark.is_new(at, item_id):
                old = False
                batch.items.append(item)
            seen.append((at, item_id))
        return old

    def _review(self, review: ReviewIn, user: UserCommentIn, external_id: str) -> RawItem:
        device = user.deviceMetadata.productName if user.deviceMetadata else None
        facts = [f"{user.starRating}★"]
        if user.appVersionName:
            facts.append(f"app {user.appVersionName}")
        if device or user.device:
            facts.append(f"device {device or user.device}")
        name = review.authorName.strip()
        return RawItem(
            external_id=external_id,
            text=user.text.strip(),
            created_at=user.lastModified.moment,
            channel=self.config.channel or "app_review",
            author=RawAuthor(f"play:{review.reviewId}", name or "Google Play user"),
            url=self._store_url(review.reviewId),
            lang=_language(user.reviewerLanguage),
            thread=review.reviewId,
            rating=user.starRating,
            note="Google Play review: " + ", ".join(facts),
        )

    def _reply(self, review: ReviewIn, developer: DeveloperCommentIn, external_id: str
               ) -> RawItem:
        return RawItem(
            external_id=external_id,
            text=developer.text,
            created_at=developer.lastModified.moment,
            channel=self.config.channel or "app_review",
            author=RawAuthor(f"play:{self.config.package}", "Developer reply"),
            url=self._store_url(review.reviewId),
            thread=review.reviewId,
            by_brand=True,
        )

    def _store_url(self, review_id: str) -> str:
        return STORE_URL.format(package=quote(self.config.package, safe=""),
                                review=quote(review_id, safe=""))

    # the quota ----------------------------------------------------------------------------

    def interval(self, now: datetime) -> timedelta | None:
        """Long enough that the polls fit the hourly read quota at the pages a poll has
        needed lately; a spent hour waits until a call leaves the window."""
        per_poll = max(self._pages_per_poll, default=1)
        paced = HOUR * per_poll / self.config.reads_per_hour
        if self.reads.left(now) < per_poll:
            return max(paced, self.reads.frees_at(now) - now)
        return paced

    def status(self, now: datetime) -> dict[str, Any]:
        """For /api/v1/sources and the read-budget gauge: list calls left this hour."""
        return {"read_budget": {
            "reads_per_hour": self.config.reads_per_hour,
            "used": self.reads.used(now),
            "remaining": self.reads.left(now),
            "resets_at": self.reads.frees_at(now).isoformat(),
        }, "reply_budget": {"replies_per_day": self.config.replies_per_day,
                            "remaining": self.replies.left(now)}}

    # replying -----------------------------------------------------------------------------

    def missing_reply_credentials(self) -> list[str]:
        return [] if self.config.service_account_file else ["service_account_file"]

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        """Replaces the developer reply shown under the review (Play keeps one)."""
        if len(text) > REPLY_LIMIT:
            raise ReplyRefused(422, f"Google Play replies are at most {REPLY_LIMIT} "
                                    f"characters; this one has {len(text)}; nothing was sent")
        now = datetime.now(UTC)
        if not self.replies.left(now):
            wait = (self.replies.frees_at(now) - now).total_seconds()
            raise ReplyRefused(429, f"the Play API allows {self.config.replies_per_day} "
                                    "replies a day and they are spent; nothing was sent", wait)
        review_id = review_id_of(target)
        url = f"{self._reviews_url}/{quote(review_id, safe='')}:reply"
        try:
            response = await self._call("POST", url, json={"replyText": text})
        except AuthFailed as exc:
            raise ReplyRefused(401, f"{exc}; nothing was sent") from None
        except SourceError as exc:
            raise ReplyRefused(502, f"Google Play could not be reached: {exc}") from None
        refused = self.http.refusal(response, "Google Play reply")
        if refused is not None:
            raise refused
        self.replies.add(now)
        answer = reply_object(response, "Google Play", "a reply result")
        result = answer.get("result") if isinstance(answer.get("result"), dict) else {}
        try:
            edited = Stamp.model_validate(result.get("lastEdited"))
        except ValidationError:
            edited = Stamp(seconds=int(now.timestamp()), nanos=0)
        return SentReply(f"{review_id}:reply:{edited.label}", self._store_url(review_id))

    async def close(self) -> None:
        await self.http.close()


def _language(code: str | None) -> str | None:
    """`tr`, `tr_TR` or `en-GB` → the two-letter code the enricher takes."""
    head = re.split(r"[_-]", code or "")[0].lower()
    return head if len(head) == 2 and head.isalpha() else None


def _review_id(obj: Any) -> str | None:
    value = obj.get("reviewId") if isinstance(obj, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID else None


def _snippet(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)[:2000]
