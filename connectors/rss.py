"""RSS/Atom feeds (work in progress)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from connectors.base import Batch, HttpSourceConfig, SourceError


class RssSource(HttpSourceConfig):
    default_channel: ClassVar[str | None] = "rss"

    kind: Literal["rss"]
    url: str


class RssConnector:
    kind: ClassVar[str] = "rss"
    Config: ClassVar[type[HttpSourceConfig]] = RssSource
    polled: ClassVar[bool] = True

    def __init__(self, config: RssSource):
        self.config = config

    @classmethod
    def from_config(cls, source: Any) -> RssConnector:
        return cls(source)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        raise SourceError("the rss connector is not built yet")

    async def close(self) -> None:
        pass
