"""The one place where everything is wired from one validated config object."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from connectors import build_connector
from listener import db
from listener.clock import SystemClock
from listener.config import Config
from listener.coordinator import Coordinator
from listener.gauges import refresh_gauges
from listener.jobs import Jobs
from listener.metrics import Metrics
from listener.pipeline.enrich import Enricher
from listener.pipeline.ingest import Pipeline
from listener.pipeline.route import Routing
from listener.services import SERVICES, Services
from listener.store import Store
from listener.store.actions import sync_agents
from listener.web import setup_web
from sla.planner import DeadlinePlanner

log = logging.getLogger("listener")
GAUGE_REFRESH_SECONDS = 15


def build_services(config: Config, clock: Any = None, enricher: Enricher | None = None) -> Services:
    """Fails early (LookupError/ValueError naming the source) on a kind without a connector."""
    clock = clock or SystemClock()
    store = Store.open(config.database.url)
    metrics = Metrics()
    pipeline = Pipeline(
        store,
        enricher or Enricher(),
        Routing.from_config(config),
        DeadlinePlanner.from_config(config),
        metrics,
        brand_accounts=config.brand_accounts,
        clock=clock,
    )
    coordinator = Coordinator(pipeline, store, metrics, clock)
    services = Services(config, store, metrics, clock, pipeline, coordinator)
    for source in config.sources:
        if not source.enabled:
            continue
        connector = build_connector(source)
        if hasattr(connector, "watch_brand"):
            connector.watch_brand(brand_handles(config, source))
        if getattr(connector, "polled", False):
            coordinator.add(source, connector)
        else:
            services.push_sources[source.id] = connector
    return services


def brand_handles(config: Config, source: Any) -> list[str]:
    """The brand's accounts on this source's platform (`brand_accounts` by channel or kind),
    so a connector can also read the brand's own replies."""
    keys = dict.fromkeys((source.channel, source.kind))
    handles = [h.lstrip("@") for key in keys if key for h in config.brand_accounts.get(key, [])]
    return list(dict.fromkeys(handles))


def agent_rows(config: Config) -> list[dict[str, Any]]:
    return [
        {
            "id": a.id,
            "name": a.name or a.id,
            "channels": list(a.channels),
            "languages": list(a.languages),
            "max_open": a.max_open,
            "shift": a.shift,
            "slack": a.slack,
        }
        for a in config.agents
    ]


class SchemaNotCurrent(RuntimeError):
    pass


async def prepare_database(services: Services, migrate: bool) -> None:
    if migrate:
        await db.migrate(services.store.engine)
    elif not await db.at_head(services.store.engine):
        raise SchemaNotCurrent(
            "the database schema is not at the latest migration; "
            "run `listener migrate --config FILE` or drop --no-migrate"
        )
    async with services.store.write() as session:
        await sync_agents(session, agent_rows(services.config))


def init_app(services: Services, migrate: bool = True, background: bool = True) -> web.Application:
    """`background=False` gives tests the web app without pollers and timers."""
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SERVICES] = services

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await prepare_database(services, migrate)
        jobs = Jobs()
        if background:
            services.coordinator.schedule(jobs)
            jobs.every(GAUGE_REFRESH_SECONDS, refresh_gauges, services.store, services.metrics,
                       services.clock, job_id="gauges", first_run=services.clock.now())
            jobs.start()
        log.info(
            "listener ready: %d polled sources, %d push sources",
            len(services.coordinator.sources),
            len(services.push_sources),
        )
        yield
        await jobs.drain()
        await services.coordinator.close()
        await services.store.close()

    app.cleanup_ctx.append(lifecycle)
    setup_web(app)
    return app
