"""The SLA engine's moving half: it sleeps until the nearest alert moment (an at-risk
warning, a breach, an escalation) and fires it into the alert outbox, within about a
second of that moment and never before it.

One timer, fed by an indexed query of the earliest armed moment (`next_alert_at`), is
re-armed whenever the pipeline commits new mentions (`wake`), and a safety sweep every
few seconds catches anything a clock jump or another replica left behind. Each firing
writes the mention's state change, its history event and one outbox row per subscribed
sink in one transaction, so an alert is never lost and never written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from listener.metrics import Metrics
from listener.models import Author, Mention
from listener.outage import OutageLog
from listener.store import Store
from listener.store.sla import (
    add_events,
    add_outbox_rows,
    due_for_alerts,
    moment_event,
    next_alert_moment,
    still_open,
)
from sla.moments import Moment, due_moments

log = logging.getLogger("listener.sla")
SWEEP_SECONDS = 5.0
TEXT_EXCERPT = 500


@dataclass(frozen=True)
class AlertRoute:
    """A configured sink and the alert kinds it takes."""

    name: str
    kinds: frozenset[str]


class SlaEngine:
    def __init__(self, store: Store, moments_for: Callable[[Mention], list[Moment]],
                 routes: Sequence[AlertRoute], metrics: Metrics, clock: Any,
                 public_url: str | None = None, slack_handles: dict[str, str] | None = None,
                 escalate_to: Callable[[str | None], list[str]] | None = None):
        self.store = store
        self.moments_for = moments_for
        self.routes = tuple(routes)
        self.metrics = metrics
        self.clock = clock
        self.public_url = (public_url or "").rstrip("/") or None
        self.slack_handles = slack_handles or {}
        self.escalate_to = escalate_to or (lambda policy: [])
        self.on_alerts: Callable[[], None] | None = None
        self.on_fired: Callable[[], Awaitable[None]] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._outage = OutageLog(log, "the SLA engine", SWEEP_SECONDS)

    def wake(self) -> None:
        """New moments may be nearer than the one the timer waits for: look again."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.fire_due(self.clock.now())
                delay = await self._seconds_to_next()
                self._outage.succeeded()
            except Exception as exc:
                if (delay := self._outage.failed(exc)) is None:
                    log.exception("SLA engine: a round failed; retrying in %ss", SWEEP_SECONDS)
                    delay = SWEEP_SECONDS
            self._wake.clear()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _seconds_to_next(self) -> float:
        async with self.store.read() as session:
            moment = await next_alert_moment(session)
        if moment is None:
            return SWEEP_SECONDS
        return min(SWEEP_SECONDS, max(0.0, (moment - self.clock.now()).total_seconds()))

    async def fire_due(self, now: datetime) -> int:
        """Fire every moment that has come; returns how many alerts were written."""
        fired: list[tuple[Mention, Moment]] = []
        rows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        async with self.store.write() as session:
            for mention, author in await due_for_alerts(session, now):
                if not still_open(mention) or mention.deadline_at is None:
                    mention.next_alert_at = None
                    continue
                to_alert, handled, next_at = due_moments(
                    self.moments_for(mention), mention.alerts_fired, now)
                mention.alerts_fired = handled
                mention.next_alert_at = next_at
                for moment in to_alert:
                    events.append(moment_event(mention, moment, now))
                    rows += self._outbox_rows(mention, author, moment, now)
                    fired.append((mention, moment))
            # One statement per few hundred rows: a Monday-morning burst is one round trip,
            # not one per alert.
            written = await add_outbox_rows(session, rows)
            await add_events(session, events)
        for mention, moment in fired:
            if moment.kind == "breached":
                self.metrics.breaches.labels(channel=mention.channel,
                                             policy=mention.sla_policy or "none").inc()
        if written and self.on_alerts is not None:
            self.on_alerts()
        if fired and self.on_fired is not None:
            await self.on_fired()  # open-by-state gauges move at the moment, not on a timer
        return written

    def _outbox_rows(self, mention: Mention, author: Author | None, moment: Moment,
                     now: datetime) -> list[dict[str, Any]]:
        payload = self.payload(mention, author, moment)
        deadline = mention.deadline_at.isoformat() if mention.deadline_at else ""
        return [
            {"dedupe_key": f"{mention.id}:{moment.kind}:{moment.index}:{deadline}:{route.name}",
             "mention_id": mention.id, "sink": route.name, "kind": moment.kind,
             "payload": payload, "created_at": now, "next_attempt_at": now, "attempts": 0,
             "state": "pending"}
            for route in self.routes if moment.kind in route.kinds
        ]

    def payload(self, mention: Mention, author: Author | None,
                moment: Moment) -> dict[str, Any]:
        body = self.describe(mention, author)
        if moment.kind == "escalated":
            body["escalate_to"] = self.escalate_to(mention.sla_policy)
        return {"kind": moment.kind, "moment_at": moment.at.isoformat(), "mention": body}

    def describe(self, mention: Mention, author: Author | None) -> dict[str, Any]:
        """What a sink needs to say who is waiting, where, for how long; the raw text is
        cut here and escaped by each sink for its own format."""
        return {
            "id": mention.id,
            "channel": mention.channel,
            "source": mention.source,
            "url": mention.url,
            "dashboard_url": f"{self.public_url}/mentions/{mention.id}" if self.public_url
            else None,
            "author": {"handle": author.handle if author else "",
                       "name": author.name if author else ""},
            "text": (mention.text or "")[:TEXT_EXCERPT],
            "assignee": mention.assignee,
            "assignee_slack": self.slack_handles.get(mention.assignee or ""),
            "policy": mention.sla_policy,
            "deadline_at": mention.deadline_at.isoformat() if mention.deadline_at else None,
        }
