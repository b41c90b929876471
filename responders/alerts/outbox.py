"""The alert delivery worker: sends what the SLA engine wrote to the outbox.

Each round reads the due rows, groups each sink's rows created within its
`group_window` into one message, and claims, sends and records one message at a time
(`listener/store/alerts.py`):
- delivered → `sent` (with `delivered_in`, the id of the group's first row, when the
  message carried several alerts);
- 5xx, timeout, connection error → retried with exponential backoff (5s, 10s, 20s …
  at most 10 min); 429 → retried at `Retry-After`;
- any other refusal (400, 403, 404 …) → `failed`, with the reason, never retried.

Guarantee, honestly: exactly-once in our records (an outcome only updates rows still
pending), at-least-once to the service. If the process dies after the service took a
message but before its rows are recorded, that message (only that one) is sent again.
The webhook sink carries `dedupe_key` so a receiver can drop the repeat; chat users may
see it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from listener.metrics import Metrics
from listener.models import OutboxAlert
from listener.outage import OutageLog
from listener.redact import Redactor
from listener.store import Store
from listener.store.alerts import Claim, claim, due_rows, fail_unrouted, pending_count
from responders.alerts import build_sink
from responders.alerts.base import Alert, Sink, SinkError, SinkRateLimited, SinkRefused
from responders.alerts.grouping import by_sink, group_alerts

log = logging.getLogger("listener.alerts")
POLL_SECONDS = 1.0
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=10)
CLAIM_LIMIT = 1000
DRAIN_SECONDS = 15.0
OUTAGE_RETRY_SECONDS = 5.0


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failed try: 5s, 10s, 20s … capped at 10 minutes."""
    return min(MAX_RETRY, FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 16))


def next_attempt(error: SinkError, attempts: int, now: datetime) -> datetime:
    if isinstance(error, SinkRateLimited) and error.retry_after is not None:
        return now + timedelta(seconds=max(1.0, error.retry_after))
    return now + backoff(attempts)


def as_alert(row: OutboxAlert) -> Alert:
    return Alert(id=row.id, sink=row.sink, kind=row.kind, dedupe_key=row.dedupe_key,
                 payload=row.payload if isinstance(row.payload, dict) else {},
                 created_at=row.created_at, attempts=row.attempts)


class AlertOutbox:
    def __init__(self, store: Store, sinks: Mapping[str, Sink], metrics: Metrics, clock: Any,
                 configured: Sequence[str] | None = None):
        """`sinks`: the enabled sinks by name; `configured`: every name in the config,
        disabled ones included (their rows wait; rows of unknown names fail)."""
        self.store = store
        self.sinks = dict(sinks)
        self.metrics = metrics
        self.clock = clock
        self.configured = list(configured if configured is not None else self.sinks)
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()
        self._resume_at: dict[str, datetime] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._outage = OutageLog(log, "alert delivery", OUTAGE_RETRY_SECONDS)

    @classmethod
    def from_config(cls, config: Any, store: Store, metrics: Metrics, clock: Any
                    ) -> AlertOutbox:
        sinks = {alert.name: build_sink(alert) for alert in config.alerts if alert.enabled}
        return cls(store, sinks, metrics, clock, [alert.name for alert in config.alerts])

    def wake(self) -> None:
        """New rows were written (the engine calls this): deliver now, not at the next poll."""
        self._wake.set()

    async def run_once(self, now: datetime) -> int:
        """Deliver every due row; returns how many rows were recorded as sent."""
        sent = 0
        async with self._round:
            while active := [name for name in self.sinks
                             if self._resume_at.get(name, now) <= now]:
                rows = await due_rows(self.store, now, active, CLAIM_LIMIT)
                recorded = 0
                for sink_name, alerts in by_sink([as_alert(r) for r in rows]).items():
                    outcomes = await self._deliver_sink(self.sinks[sink_name], alerts, now)
                    sent += outcomes["sent"]
                    recorded += sum(outcomes.values())
                if len(rows) < CLAIM_LIMIT or not recorded:  # the rest: other replicas'
                    break
            async with self.store.read() as session:
                self.metrics.outbox_pending.set(await pending_count(session))
        return sent

    async def _deliver_sink(self, sink: Sink, alerts: list[Alert], now: datetime
                            ) -> Counter[str]:
        """One message per group, each claimed and recorded on its own; returns how many
        rows ended sent, failed and retried. After a failure worth retrying the sink's
        other groups are left pending until the retry time: no point hammering a service
        that is down or asked us to wait."""
        outcomes: Counter[str] = Counter()
        for group in group_alerts(alerts, sink.config.group_window, sink.limits.max_group):
            async with claim(self.store, [a.id for a in group], now) as taken:
                group = [a for a in group if a.id in taken.ids]  # not another replica's
                outcome = await self._deliver_group(taken, sink, group, now) if group \
                    else "taken"
            if outcome == "taken":
                continue
            outcomes[outcome] += len(group)
            if outcome == "retry":
                break
        return outcomes

    async def _deliver_group(self, claim: Claim, sink: Sink, group: list[Alert],
                             now: datetime) -> str:
        """Send one message and record its rows' outcome: sent, failed or retry."""
        ids = [a.id for a in group]
        attempts = max(a.attempts for a in group) + 1
        try:
            await sink.deliver(group, now)
        except SinkRefused as exc:
            reason = Redactor.of(sink.config)(str(exc))  # the answer may quote its URL
            log.warning("alert sink %s refused %d alert(s) for good: %s", sink.name,
                        len(group), reason)
            await claim.failed(ids, reason)
            self._count(sink, group, "failed")
            return "failed"
        except SinkError as exc:
            at = next_attempt(exc, attempts, now)
            reason = Redactor.of(sink.config)(str(exc))
            log.info("alert sink %s: %d alert(s) not delivered (%s); next try at %s",
                     sink.name, len(group), reason, at.isoformat())
            await claim.retry(ids, at, reason)
            self._count(sink, group,
                        "rate_limited" if isinstance(exc, SinkRateLimited) else "retry")
            self._resume_at[sink.name] = at
            return "retry"
        except Exception as exc:  # a bug in one sink must not stop the others
            log.exception("alert sink %s crashed; retrying later", sink.name)
            at = now + backoff(attempts)
            await claim.retry(ids, at, f"internal error ({type(exc).__name__})")
            self._count(sink, group, "retry")
            self._resume_at[sink.name] = at
            return "retry"
        await claim.sent(ids, now, group[0].id if len(group) > 1 else None)
        self._count(sink, group, "sent")
        return "sent"

    def _count(self, sink: Sink, group: list[Alert], outcome: str) -> None:
        for alert in group:
            self.metrics.alerts_sent.labels(sink=sink.name, kind=alert.kind,
                                            outcome=outcome).inc()

    async def run(self) -> None:
        """Deliver as rows come (`wake`), and every second for retries that fall due."""
        try:
            unrouted = await fail_unrouted(self.store, self.configured,
                                           "no alert sink of this name in the config")
        except Exception:
            log.exception("alert outbox: could not check for alerts of removed sinks")
            unrouted = 0
        if unrouted:
            log.warning("%d pending alert(s) name a sink the config no longer has; "
                        "marked failed", unrouted)
        while not self._stopping:
            self._wake.clear()
            pause = POLL_SECONDS
            try:
                await self.run_once(self.clock.now())
                self._outage.succeeded()
            except Exception as exc:
                outage_retry = self._outage.failed(exc)
                if outage_retry is None:
                    log.exception("alert delivery round failed; retrying in %ss",
                                  POLL_SECONDS)
                pause = outage_retry or POLL_SECONDS
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="alert-outbox")

    async def close(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Stop the loop, deliver what is due one last time (bounded: a dead webhook must
        not hold up shutdown; what is left stays pending for the next start), close."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
            try:
                await asyncio.wait_for(self.run_once(self.clock.now()), drain_seconds)
            except TimeoutError:
                log.warning("alert outbox: shutdown flush cut off after %ss", drain_seconds)
            except Exception:
                log.exception("alert outbox: shutdown flush failed")
        for sink in self.sinks.values():
            await sink.close()
