"""The one small interface every source implements, the item shape it yields, and the
config model every source kind extends.

A connector only knows its API: `fetch(cursor)` returns new items and the next cursor.
It never touches the database; the coordinator commits the cursor with the items.
A connector declares its own config model (`Config`) next to its code; the registry in
`connectors/__init__.py` builds the sources' discriminated union from those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import ByteSize, Field, SecretStr, field_validator, model_validator

from connectors.text import without_lone_surrogates
from listener.config_fields import Duration, Section


class SourceConfig(Section):
    """Keys every source has. `channel` is what agents, routing rules and SLA policies
    match on; it defaults to the kind's own channel (`default_channel`)."""

    default_channel: ClassVar[str | None] = None

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    enabled: bool = True
    channel: str | None = Field(None, min_length=1, max_length=30, pattern=r"^[a-z0-9_.-]+$")
    # Whose brand every item of this source is about: `ours` or a `competitors[].name`;
    # unset, each item's text decides (`listener.brands`).
    brand: str | None = Field(None, min_length=1, max_length=50)

    @model_validator(mode="before")
    @classmethod
    def _default_channel(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("channel") is None and cls.default_channel:
            return {**data, "channel": cls.default_channel}
        return data


class PolledSourceConfig(SourceConfig):
    interval: Duration = timedelta(seconds=300)
    backfill: Duration = timedelta(days=1)
    timeout: Duration = timedelta(seconds=30)

    @field_validator("interval")
    @classmethod
    def _sane_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        return value


class HttpSourceConfig(PolledSourceConfig):
    """A polled source over HTTP. The User-Agent names the product, as platforms ask.
    `max_body` ("10MiB", "500kB" or bytes) caps what one response may bring: a bigger
    page fails the poll with that reason instead of filling the memory."""

    user_agent: str = "Listener/0.1 (self-hosted social listening)"
    max_body: ByteSize = Field(ByteSize(10 * 2**20), ge=1024)


class ReplyingSourceConfig(HttpSourceConfig):
    """A source that can answer on its platform when `send_replies` is on."""

    send_replies: bool = False


def secret_value(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""


MAX_FOLLOWERS = 2**31 - 1  # what authors.followers holds; no account has more


@dataclass(frozen=True)
class RawAuthor:
    handle: str
    name: str = ""
    email: str | None = None
    followers: int | None = None
    phone: str | None = None  # as the platform gave it; normalised when linking customers


@dataclass(frozen=True)
class RawItem:
    """One mention as a connector saw it. `thread` groups a conversation (X
    conversation_id, Reddit submission, Discourse topic); `note` is recorded in the
    mention's `ingested` event (e.g. "no date upstream: fetch time used"). `by_brand`
    marks a post the connector knows is the brand's own (read from the brand account's
    timeline), whatever `brand_accounts` says. `repost` marks a retweet, boost or crosspost the
    platform flags as such: someone else's words, so noise for the queue. `rating`: an app
    review's star rating (1-5), which feeds sentiment and priority."""

    external_id: str
    text: str
    created_at: datetime
    channel: str
    author: RawAuthor
    url: str | None = None
    lang: str | None = None
    in_reply_to: str | None = None
    thread: str | None = None
    note: str | None = None
    by_brand: bool = False
    repost: bool = False
    rating: int | None = None  # an app-store review's stars, 1-5


@dataclass(frozen=True)
class Rejected:
    """A malformed upstream item, kept for the record instead of crashing the poll."""

    reason: str
    payload: str
    external_id: str | None = None

    def __post_init__(self) -> None:
        """Storable whatever the upstream sent: a NUL or half an emoji in the quoted payload
        would make the database refuse the whole poll, again at every retry."""
        for name in ("reason", "payload", "external_id"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, storable(value))


def storable(text: str) -> str:
    return without_lone_surrogates(text).replace("\x00", "\ufffd")


@dataclass
class Batch:
    """What one poll produced. `not_before` asks the coordinator not to poll again before
    that moment (a rate-limit window that is used up even though this call succeeded)."""

    items: list[RawItem] = field(default_factory=list)
    cursor: str | None = None
    rejected: list[Rejected] = field(default_factory=list)
    not_before: datetime | None = None


class SourceError(Exception):
    """The upstream failed in a way worth retrying later (5xx, timeout, bad body)."""


class RateLimited(SourceError):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Token:
    """An access token a connector got from an OAuth endpoint, and when it stops working."""

    value: str
    expires_at: datetime


class Malformed(ValueError):
    """One upstream item cannot be read: it is recorded as rejected, its neighbours kept."""

    def __init__(self, reason: str, external_id: str | None = None):
        super().__init__(reason)
        self.external_id = external_id


def require_file(key: str, path: str, what: str) -> None:
    """A credential file named in the config must be there when the source is built, so
    check-config and start-up say so with the key, not the first poll."""
    if not Path(path).is_file():
        raise ValueError(f"{key}: no file at {path!r}; put {what} there")


class AuthFailed(SourceError):
    """Credentials were refused: retrying soon will not help, the operator must act.
    The message says which credential to check."""


@dataclass(frozen=True)
class ReplyTarget:
    """The mention being answered, as the platform knows it."""

    external_id: str
    author_handle: str
    url: str | None = None
    thread: str | None = None


@dataclass(frozen=True)
class SentReply:
    external_id: str
    url: str | None = None


class ReplyRefused(Exception):
    """The platform refused a reply (401/403/422/429/5xx): nothing was sent."""

    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Connector(Protocol):
    kind: ClassVar[str]
    Config: ClassVar[type[SourceConfig]]
    polled: ClassVar[bool]

    async def fetch(self, cursor: str | None, now: datetime) -> Batch: ...

    async def close(self) -> None: ...


class Replier(Protocol):
    """Optional: connectors whose platform takes replies. `reply_credentials` says what
    is missing (empty when it can send)."""

    def missing_reply_credentials(self) -> list[str]: ...

    async def reply(self, target: ReplyTarget, text: str) -> SentReply: ...
