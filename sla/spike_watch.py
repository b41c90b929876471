"""The spike watcher: every 30 seconds (sooner after an ingest) it counts negative
mentions in the last `spike.window`, compares them with the same window in earlier
weeks (`sla/spike.py` decides), and when a spike starts writes one outbox row per sink
that takes `spike`.

The spike is remembered in `spike_states` in the same transaction as its alerts, so a
restart or a second replica during the spike does not alert it again; it is closed
once the count has fallen back, and the next spike alerts anew.

With `spike.competitors`, each competitor's negative mentions are watched the same way,
each with its own spike state, and a surge is written for the sinks that take
`competitor_spike` (an opening for the sales team, not a crisis of ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from listener.metrics import Metrics
from listener.models import Author, Mention
from listener.outage import OutageLog
from listener.store import Store
from listener.store.sla import add_outbox_rows
from listener.store.spike import angriest, lock_spikes, negative_counts, open_spike, start_spike
from sla.durations import format_duration
from sla.engine import AlertRoute
from sla.spike import alert_due, baseline, in_spike, windows

log = logging.getLogger("listener.spike")
CHECK_SECONDS = 30.0
# An ingest wakes the watcher, but a stream of batches costs at most one check this often.
WAKE_GAP_SECONDS = 5.0
EXAMPLES = 3

Describe = Callable[[Mention, Author | None], dict[str, Any]]


class SpikeWatch:
    def __init__(self, store: Store, rule: Any, routes: Sequence[AlertRoute],
                 metrics: Metrics, clock: Any, describe: Describe, tz: tzinfo = UTC,
                 competitors: Sequence[str] = ()):
        """`rule`: the `spike` config section; `describe`: a mention as alerts show it;
        `competitors`: their names, watched when `rule.competitors` is on."""
        self.store = store
        self.rule = rule
        self.routes = tuple(r for r in routes if "spike" in r.kinds)
        self.competitor_routes = tuple(r for r in routes if "competitor_spike" in r.kinds)
        self.competitors = tuple(competitors) if getattr(rule, "competitors", False) else ()
        self.metrics = metrics
        self.clock = clock
        self.describe = describe
        self.tz = tz
        self.on_alerts: Callable[[], None] | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._outage = OutageLog(log, "the spike watcher", CHECK_SECONDS,
                                 f"checking again every {CHECK_SECONDS:g}s")

    async def check(self, now: datetime) -> int:
        """Look once; returns how many alerts were written (0 unless a spike started)."""
        now = now.astimezone(UTC)  # keys and payloads in UTC, as the engine's
        spans = windows(now, self.rule.window, self.rule.weeks, self.tz)
        written = await self._check(now, spans, None)
        for competitor in self.competitors:
            written += await self._check(now, spans, competitor)
        if written and self.on_alerts is not None:
            self.on_alerts()
        return written

    async def _check(self, now: datetime, spans: list[tuple[datetime, datetime]],
                     brand: str | None) -> int:
        """One brand's spike: ours (`brand` None) or a competitor's."""
        rule = self.rule
        async with self.store.read() as session:
            counts = await negative_counts(session, spans, rule.sentiment_below, brand)
            current = await open_spike(session, brand)
        count, usual = counts[0], baseline(counts[1:])
        if brand is None:
            self.metrics.negative_window.set(count)
            self.metrics.negative_baseline.set(usual)
        if current is None and not in_spike(False, count, usual, rule.ratio, rule.min_count):
            return 0  # the usual case: nothing to write
        if current is not None and in_spike(True, count, usual, rule.ratio, rule.min_count) \
                and count <= current.peak_count:
            return 0
        written = 0
        async with self.store.write() as session:
            await lock_spikes(session)
            current = await open_spike(session, brand)  # another replica may have moved it
            was = current is not None
            now_in = in_spike(was, count, usual, rule.ratio, rule.min_count)
            if current is not None:
                if now_in:
                    current.peak_count = max(current.peak_count, count)
                else:
                    current.ended_at = now
                    log.info("%s over: %d negative mention(s) in the last %s (peak %d)",
                             _what(brand), count, format_duration(rule.window),
                             current.peak_count)
            if alert_due(was, now_in):
                start_spike(session, now, count, brand)
                examples = await angriest(session, spans[0][0], spans[0][1],
                                          rule.sentiment_below, EXAMPLES, brand)
                written = await add_outbox_rows(session, self._outbox_rows(
                    now, count, usual, examples, brand))
                log.warning("%s: %d negative mention(s) in the last %s (usually %s); "
                            "%d alert(s) written", _what(brand), count,
                            format_duration(rule.window), shown(usual), written)
        return written

    def _outbox_rows(self, now: datetime, count: int, usual: float,
                     examples: list[tuple[Mention, Author | None]],
                     brand: str | None = None) -> list[dict[str, Any]]:
        kind, routes = ("spike", self.routes) if brand is None else (
            "competitor_spike", self.competitor_routes)
        key = f"{kind}:{now.isoformat()}" if brand is None else \
            f"{kind}:{brand}:{now.isoformat()}"
        payload = {
            "kind": kind,
            **({"brand": brand} if brand is not None else {}),
            "moment_at": now.isoformat(),
            "count": count,
            "baseline": shown(usual),
            "window": format_duration(self.rule.window),
            "examples": [self.describe(mention, author) for mention, author in examples],
        }
        return [
            {"dedupe_key": f"{key}:{route.name}", "mention_id": None,
             "sink": route.name, "kind": kind, "payload": payload, "created_at": now,
             "next_attempt_at": now, "attempts": 0, "state": "pending"}
            for route in routes
        ]

    def wake(self) -> None:
        """New mentions were stored: look again soon, not at the next half minute."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                await self.check(self.clock.now())
                self._outage.succeeded()
            except Exception as exc:
                if self._outage.failed(exc) is None:
                    log.exception("spike watcher: a check failed; retrying in %ss",
                                  CHECK_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), WAKE_GAP_SECONDS)
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), CHECK_SECONDS - WAKE_GAP_SECONDS)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="spike-watch")

    async def close(self) -> None:
        """Stop between checks; a check under way finishes its transaction first."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None


def _what(brand: str | None) -> str:
    return "spike" if brand is None else f"competitor spike ({brand})"


def shown(usual: float) -> int | float:
    """The baseline as people read it: 6, or 6.5 between two weeks."""
    return int(usual) if usual == int(usual) else round(usual, 1)
