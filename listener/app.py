"""The one place where everything is wired from one validated config object."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from connectors import build_connector
from listener import db
from listener.backlog import BACKLOG, Backlog
from listener.brands import Brands
from listener.clock import SystemClock
from listener.config import Config
from listener.coordinator import Coordinator
from listener.gauges import refresh_gauges
from listener.jobs import Jobs
from listener.leases import holder_id, lock_sqlite_file
from listener.live import LIVE, LiveFeed, end_live_streams
from listener.malloc import TRIM_SECONDS, limit_arenas, release_free_memory
from listener.metrics import Metrics
from listener.models import Mention
from listener.pipeline.enrich import Enricher
from listener.pipeline.ingest import Pipeline
from listener.pipeline.noise import NoiseFilter
from listener.pipeline.route import Routing
from listener.services import SERVICES, Services
from listener.store import Store
from listener.store.actions import sync_agents
from listener.web import setup_web
from listener.web.body_limit import MAX_BODY_BYTES
from responders.alerts.outbox import AlertOutbox
from sla.engine import AlertRoute, SlaEngine
from sla.moments import Moment
from sla.planner import DeadlinePlanner
from sla.spike_watch import SpikeWatch

log = logging.getLogger("listener")
GAUGE_REFRESH_SECONDS = 15
# The alert delivery worker; the SLA engine calls its `wake` after writing alerts.
ALERT_OUTBOX = web.AppKey("alert_outbox", AlertOutbox)


def build_services(config: Config, clock: Any = None, enricher: Enricher | None = None) -> Services:
    """Fails early (LookupError/ValueError naming the source) on a kind without a connector."""
    clock = clock or SystemClock()
    store = Store.open(config.database.url)
    metrics = Metrics(policy_thresholds(config))
    pipeline = Pipeline(
        store,
        enricher or Enricher(),
        Routing.from_config(config),
        DeadlinePlanner.from_config(config),
        metrics,
        brand_accounts=config.brand_accounts,
        clock=clock,
        follow_up_window=config.sla.next_response_window,
        noise=NoiseFilter.from_config(config.noise),
        phone_region=config.customers.default_region,
        brands=Brands.from_config(config),
    )
    # Replicas on PostgreSQL share the polled sources by lease; SQLite is one process.
    coordinator = Coordinator(pipeline, store, metrics, clock,
                              holder=holder_id() if store.dialect == "postgresql" else None)
    engine = sla_engine(config, store, metrics, clock, pipeline.planner)
    pipeline.after_commit = engine.wake
    services = Services(config, store, metrics, clock, pipeline, coordinator, engine)
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


def policy_thresholds(config: Config) -> list[float]:
    """Seconds of each policy's clocks (same_day: a working day) for histogram buckets."""
    seconds = []
    for policy in config.sla.policies:
        for rule in (policy.first_response, policy.next_response):
            if isinstance(rule, timedelta):
                seconds.append(rule.total_seconds())
            elif rule == "same_day":
                seconds.append(9 * 3600.0)
    return seconds


def sla_engine(config: Config, store: Store, metrics: Metrics, clock: Any,
               planner: DeadlinePlanner) -> SlaEngine:
    routes = [AlertRoute(getattr(alert, "name", None) or f"{alert.kind}-{index}",
                         frozenset(alert.on))
              for index, alert in enumerate(config.alerts) if alert.enabled]

    def moments_for(mention: Mention) -> list[Moment]:
        assert mention.deadline_at is not None
        return planner.moments(mention.sla_policy, mention.created_at, mention.deadline_at)

    def escalate_to(policy_name: str | None) -> list[str]:
        """The policy's `escalate_to` as people to ping: an agent's Slack handle (else its
        id), and for a team every member's."""
        policy = planner.policy_named(policy_name)
        people: list[str] = []
        for name in policy.escalate_to if policy else ():
            members = [a for a in config.agents if a.id == name or name in a.teams]
            people += [a.slack or a.id for a in members] or [name]
        return list(dict.fromkeys(people))

    return SlaEngine(store, moments_for, routes, metrics, clock,
                     public_url=config.server.public_url,
                     slack_handles={a.id: a.slack for a in config.agents if a.slack},
                     escalate_to=escalate_to)


def spike_watch(services: Services) -> SpikeWatch:
    """The crisis alert, sending to the SLA engine's sinks that take `spike` (and with
    `spike.competitors`, each competitor's surge to those taking `competitor_spike`); its
    examples are the same mention dicts the engine's alerts carry."""
    engine = services.engine
    return SpikeWatch(services.store, services.config.spike, engine.routes, services.metrics,
                      services.clock, engine.describe, services.config.tz,
                      competitors=[c.name for c in services.config.competitors])


def wake_all(*wakes: Callable[[], None] | None) -> None:
    """One pipeline commit hook for several listeners (the SLA engine, the spike watcher)."""
    for wake in wakes:
        if wake is not None:
            wake()


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
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SERVICES] = services
    outbox = app[ALERT_OUTBOX] = AlertOutbox.from_config(
        services.config, services.store, services.metrics, services.clock)
    backlog = app[BACKLOG] = Backlog(services.store, services.pipeline.routing, services.clock)
    live = app[LIVE] = LiveFeed()  # open queue pages hear of changes after each commit
    backlog.on_change = functools.partial(live.mentions_changed, what="assigned")
    services.pipeline.after_commit = functools.partial(
        wake_all, services.pipeline.after_commit,
        functools.partial(live.mentions_changed, (), "new"))
    app.on_shutdown.append(end_live_streams)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        sqlite_file = services.store.engine.url.database
        serve_lock = lock_sqlite_file(sqlite_file) if background and \
            services.store.dialect == "sqlite" and sqlite_file not in (None, "", ":memory:") \
            else None
        if background:
            limit_arenas()  # before the database's and lingua's threads start
        await prepare_database(services, migrate)
        jobs = Jobs()
        if background:
            services.coordinator.schedule(jobs)
            backlog.start(jobs)
            jobs.every(GAUGE_REFRESH_SECONDS, refresh_gauges, services.store, services.metrics,
                       services.clock, job_id="gauges", first_run=services.clock.now())
            jobs.every(TRIM_SECONDS, release_free_memory, job_id="malloc-trim",
                       first_run=services.clock.now())
            jobs.start()
            outbox.start()
            services.engine.on_alerts = outbox.wake
            services.engine.on_fired = functools.partial(
                refresh_gauges, services.store, services.metrics, services.clock)
            engine_task = asyncio.create_task(services.engine.run(), name="sla-engine")
            if services.config.spike.enabled:
                spikes = spike_watch(services)
                spikes.on_alerts = outbox.wake
                wake_engine = services.pipeline.after_commit
                services.pipeline.after_commit = functools.partial(
                    wake_all, wake_engine, spikes.wake)
                spikes.start()
        log.info(
            "listener ready: %d polled sources, %d push sources",
            len(services.coordinator.sources),
            len(services.push_sources),
        )
        yield
        if background:
            services.engine.stop()
            await engine_task
            if services.config.spike.enabled:
                await spikes.close()
        services.coordinator.abandon_fetches()
        await jobs.drain()
        await outbox.close()  # after the jobs: alerts they wrote are flushed too
        await services.coordinator.close()
        await services.store.close()
        if serve_lock is not None:
            serve_lock.close()

    app.cleanup_ctx.append(lifecycle)
    setup_web(app)
    return app
