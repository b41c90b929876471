"""The services object the web handlers work with, and its key on the aiohttp app.

A module of its own so that `listener.web` and `listener.app` do not import each other:
the app wires services and web together; the web only needs this shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from listener.config import Config
from listener.coordinator import Coordinator
from listener.metrics import Metrics
from listener.pipeline.ingest import Pipeline
from listener.store import Store
from responders.composer import Composer
from sla.engine import SlaEngine


@dataclass
class Services:
    config: Config
    store: Store
    metrics: Metrics
    clock: Any
    pipeline: Pipeline
    coordinator: Coordinator
    engine: SlaEngine
    push_sources: dict[str, Any] = field(default_factory=dict)
    composer: Composer = None  # type: ignore[assignment]  # built from config.replies

    def __post_init__(self) -> None:
        if self.composer is None:
            self.composer = Composer.from_config(self.config)

    def connector_for(self, source_id: str) -> Any:
        polled = self.coordinator.sources.get(source_id)
        return polled.connector if polled else self.push_sources.get(source_id)


SERVICES = web.AppKey("services", Services)
