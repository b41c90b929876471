"""Discourse (work in progress)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import SecretStr

from connectors.base import Batch, ReplyingSourceConfig, SourceError


class DiscourseSource(ReplyingSourceConfig):
    default_channel: ClassVar[str | None] = "discourse"

    kind: Literal["discourse"]
    base_url: str
    api_key: SecretStr | None = None
    api_username: str | None = None


class DiscourseConnector:
    kind: ClassVar[str] = "discourse"
    Config: ClassVar[type[ReplyingSourceConfig]] = DiscourseSource
    polled: ClassVar[bool] = True

    def __init__(self, config: DiscourseSource):
        self.config = config

    @classmethod
    def from_config(cls, source: Any) -> DiscourseConnector:
        return cls(source)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        raise SourceError("the discourse connector is not built yet")

    async def close(self) -> None:
        pass
