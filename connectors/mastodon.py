"""Mastodon (work in progress)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import SecretStr

from connectors.base import Batch, ReplyingSourceConfig, SourceError


class MastodonSource(ReplyingSourceConfig):
    default_channel: ClassVar[str | None] = "mastodon"

    kind: Literal["mastodon"]
    hashtag: str
    base_url: str = "https://mastodon.social"
    access_token: SecretStr | None = None


class MastodonConnector:
    kind: ClassVar[str] = "mastodon"
    Config: ClassVar[type[ReplyingSourceConfig]] = MastodonSource
    polled: ClassVar[bool] = True

    def __init__(self, config: MastodonSource):
        self.config = config

    @classmethod
    def from_config(cls, source: Any) -> MastodonConnector:
        return cls(source)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        raise SourceError("the mastodon connector is not built yet")

    async def close(self) -> None:
        pass
