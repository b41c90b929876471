"""Complaint sites and any web page, read with CSS selectors (work in progress)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from connectors.base import Batch, HttpSourceConfig, SourceError
from listener.config_fields import Duration, Section


class HtmlSelectors(Section):
    """CSS selectors; `sel@attr` reads an attribute, a bare `@attr` the item's own."""

    item: str
    id: str
    text: str
    author: str | None = None
    link: str | None = None
    created_at: str | None = None
    next: str | None = None


class HtmlSource(HttpSourceConfig):
    default_channel: ClassVar[str | None] = "html"

    kind: Literal["html"]
    url: str
    selectors: HtmlSelectors
    max_pages: int = Field(1, ge=1, le=50)
    ignore_robots: bool = False
    host_interval: Duration = timedelta(seconds=5)


class HtmlConnector:
    kind: ClassVar[str] = "html"
    Config: ClassVar[type[HttpSourceConfig]] = HtmlSource
    polled: ClassVar[bool] = True

    def __init__(self, config: HtmlSource):
        self.config = config

    @classmethod
    def from_config(cls, source: Any) -> HtmlConnector:
        return cls(source)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        raise SourceError("the html connector is not built yet")

    async def close(self) -> None:
        pass
