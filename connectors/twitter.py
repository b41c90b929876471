"""Twitter (work in progress)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from connectors.base import Batch, ReplyingSourceConfig, SourceError


class TwitterSource(ReplyingSourceConfig):
    default_channel: ClassVar[str | None] = "twitter"

    kind: Literal["twitter"]
    query: str
    bearer_token: SecretStr
    base_url: str = "https://api.twitter.com"
    monthly_reads: int | None = Field(None, ge=1)
    max_results: int = Field(100, ge=10, le=100)
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None


class TwitterConnector:
    kind: ClassVar[str] = "twitter"
    Config: ClassVar[type[ReplyingSourceConfig]] = TwitterSource
    polled: ClassVar[bool] = True

    def __init__(self, config: TwitterSource):
        self.config = config

    @classmethod
    def from_config(cls, source: Any) -> TwitterConnector:
        return cls(source)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        raise SourceError("the twitter connector is not built yet")

    async def close(self) -> None:
        pass
