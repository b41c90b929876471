"""Prometheus metrics on the app's own registry. No label carries a mention, author or
agent id, so a scrape costs the same at 10 or 10 million mentions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RESPONSE_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 604800)


class Metrics:
    def __init__(self, thresholds: Iterable[float] = ()) -> None:
        """`thresholds` (seconds) are the policies' own deadlines, added to the response-time
        buckets so "answered within the policy" can be read off the histogram exactly."""
        self.registry = CollectorRegistry()
        buckets = tuple(sorted(set(RESPONSE_BUCKETS) | {float(t) for t in thresholds if t > 0}))
        r = self.registry
        self.ingested = Counter(
            "listener_mentions_ingested", "Mentions stored", ["source", "channel"], registry=r
        )
        self.duplicates = Counter(
            "listener_mentions_duplicate",
            "Mentions seen again and not stored",
            ["source"],
            registry=r,
        )
        self.rejected = Counter(
            "listener_items_rejected", "Malformed upstream items skipped", ["source"], registry=r
        )
        self.first_response = Histogram(
            "listener_first_response_seconds",
            "Wall-clock time from post to first response",
            ["channel", "policy"],
            buckets=buckets,
            registry=r,
        )
        self.breaches = Counter(
            "listener_sla_breaches",
            "Mentions answered late or not at all",
            ["channel", "policy"],
            registry=r,
        )
        self.met = Counter(
            "listener_sla_met", "Mentions answered in time", ["channel", "policy"], registry=r
        )
        self.missed = Counter(
            "listener_sla_missed", "Mentions answered after their deadline",
            ["channel", "policy"], registry=r,
        )
        self.open_mentions = Gauge(
            "listener_open_mentions",
            "Open mentions by SLA state",
            ["channel", "sla_state"],
            registry=r,
        )
        self.oldest_open = Gauge(
            "listener_oldest_open_mention_age_seconds",
            "Age of the oldest open mention",
            ["channel"],
            registry=r,
        )
        self.polls = Counter(
            "listener_source_polls", "Source polls by outcome", ["source", "outcome"], registry=r
        )
        self.last_success = Gauge(
            "listener_source_last_success_timestamp_seconds",
            "When a source last polled successfully",
            ["source"],
            registry=r,
        )
        self.read_budget = Gauge(
            "listener_source_read_budget_remaining",
            "Posts a source may still read this month (X monthly_reads)",
            ["source"],
            registry=r,
        )
        self.alerts_sent = Counter(
            "listener_alerts_sent", "Alert deliveries", ["sink", "kind", "outcome"], registry=r
        )
        self.outbox_pending = Gauge(
            "listener_alert_outbox_pending", "Alerts waiting to be sent", registry=r
        )
        self.negative_window = Gauge(
            "listener_negative_mentions_window",
            "Negative mentions posted in the last spike window", registry=r,
        )
        self.negative_baseline = Gauge(
            "listener_negative_mentions_baseline",
            "Usual negative mentions in that window at this hour of the week", registry=r,
        )
        self.brand_mentions = Counter(
            "listener_brand_mentions",
            "Mentions counted in share of voice, by brand (ours or a competitor's)",
            ["brand", "channel", "sentiment"], registry=r,
        )

    def observe_first_response(self, channel: str, policy: str | None, created_at: datetime,
                               responded_at: datetime, deadline_at: datetime | None) -> None:
        """Wall-clock response time, and whether it met the deadline. Unanswered breaches
        are counted when they are detected, not here, so a late answer counts once."""
        label = policy or "none"
        seconds = max(0.0, (responded_at - created_at).total_seconds())
        self.first_response.labels(channel=channel, policy=label).observe(seconds)
        if deadline_at is not None and responded_at <= deadline_at:
            self.met.labels(channel=channel, policy=label).inc()
        elif deadline_at is not None:
            self.missed.labels(channel=channel, policy=label).inc()
