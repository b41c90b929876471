"""Reddit (work in progress)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import SecretStr

from connectors.base import Batch, ReplyingSourceConfig, SourceError
from listener.config_fields import StrList


class RedditSource(ReplyingSourceConfig):
    default_channel: ClassVar[str | None] = "reddit"

    kind: Literal["reddit"]
    query: str
    base_url: str = "https://www.reddit.com"
    oauth_url: str = "https://oauth.reddit.com"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    subreddits: StrList = []


class RedditConnector:
    kind: ClassVar[str] = "reddit"
    Config: ClassVar[type[ReplyingSourceConfig]] = RedditSource
    polled: ClassVar[bool] = True

    def __init__(self, config: RedditSource):
        self.config = config

    @classmethod
    def from_config(cls, source: Any) -> RedditConnector:
        return cls(source)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        raise SourceError("the reddit connector is not built yet")

    async def close(self) -> None:
        pass
