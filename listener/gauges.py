"""Gauges that need the database are refreshed by a periodic job, never by a scrape."""

from __future__ import annotations

from typing import Any

from listener.metrics import Metrics
from listener.store import Store
from listener.store.queries import (
    SLA_STATES,
    oldest_open_by_channel,
    open_by_channel_state,
    pending_alerts,
)


async def refresh_gauges(store: Store, metrics: Metrics, clock: Any) -> None:
    now = clock.now()
    async with store.read() as session:
        open_counts = await open_by_channel_state(session, now)
        oldest = await oldest_open_by_channel(session)
        metrics.outbox_pending.set(await pending_alerts(session))
    channels = {channel for channel, _ in open_counts} | set(oldest)
    metrics.open_mentions.clear()
    for channel in channels:
        for state in (*SLA_STATES[:3], "none"):
            metrics.open_mentions.labels(channel=channel, sla_state=state).set(
                open_counts.get((channel, state), 0)
            )
    metrics.oldest_open.clear()
    for channel, created_at in oldest.items():
        metrics.oldest_open.labels(channel=channel).set(max(0, (now - created_at).total_seconds()))
