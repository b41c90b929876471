"""The one small interface every source implements, and the item shape it yields.

A connector only knows its API: `fetch(cursor)` returns new items and the next cursor.
It never touches the database; the coordinator commits the cursor with the items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol


@dataclass(frozen=True)
class RawAuthor:
    handle: str
    name: str = ""
    email: str | None = None
    followers: int | None = None


@dataclass(frozen=True)
class RawItem:
    external_id: str
    text: str
    created_at: datetime
    channel: str
    author: RawAuthor
    url: str | None = None
    lang: str | None = None
    in_reply_to: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A malformed upstream item, kept for the record instead of crashing the poll."""

    reason: str
    payload: str
    external_id: str | None = None


@dataclass
class Batch:
    items: list[RawItem] = field(default_factory=list)
    cursor: str | None = None
    rejected: list[Rejected] = field(default_factory=list)


class SourceError(Exception):
    """The upstream failed in a way worth retrying later (5xx, timeout, bad body)."""


class RateLimited(SourceError):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class AuthFailed(SourceError):
    """Credentials were refused: retrying soon will not help, the operator must act."""


class Connector(Protocol):
    kind: ClassVar[str]

    async def fetch(self, cursor: str | None, now: datetime) -> Batch: ...

    async def close(self) -> None: ...
