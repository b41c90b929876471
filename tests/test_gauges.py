"""Gauges a Grafana board reads: open mentions by SLA state, oldest open age."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from listener.app import prepare_database
from listener.gauges import refresh_gauges
from listener.pipeline.ingest import SourceInfo
from tests.test_coordinator import item


async def test_gauges_follow_the_clock(services: Any, clock: Any) -> None:
    await prepare_database(services, migrate=True)
    posted = clock.now() - timedelta(minutes=20)
    await services.pipeline.ingest(SourceInfo("site-form", "webhook"),
                                   [item(1, posted), item(2, posted, handle="veli")])
    registry = services.metrics.registry
    await refresh_gauges(services.store, services.metrics, clock)
    assert registry.get_sample_value(
        "listener_open_mentions", {"channel": "twitter", "sla_state": "on_track"}) == 2
    assert registry.get_sample_value(
        "listener_oldest_open_mention_age_seconds", {"channel": "twitter"}) == 20 * 60
    clock.advance(timedelta(hours=9))  # past the 18:00 deadline
    await refresh_gauges(services.store, services.metrics, clock)
    assert registry.get_sample_value(
        "listener_open_mentions", {"channel": "twitter", "sla_state": "breached"}) == 2
    assert registry.get_sample_value(
        "listener_open_mentions", {"channel": "twitter", "sla_state": "on_track"}) == 0
    assert registry.get_sample_value("listener_alert_outbox_pending") == 0
    await services.store.close()
