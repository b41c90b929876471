"""The one owner of polling: schedule with jitter, back off on errors, honour rate limits,
keep health, and hand each batch to the pipeline together with its cursor.

Connectors only raise typed errors; logging happens here and only on the down and
recovered transitions, so a source that is down for an hour logs twice, not 60 times.
Each source re-arms its own next poll after every poll, so a connector can stretch its
interval (the X read budget) and a rate-limit window moves the next poll exactly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import AuthFailed, Batch, RateLimited, SourceError
from listener.jobs import Jobs
from listener.metrics import Metrics
from listener.pipeline.ingest import Pipeline, SourceInfo
from listener.store import Store
from listener.store.ingest import load_cursor, record_poll_failure

log = logging.getLogger("listener.coordinator")
MAX_BACKOFF = timedelta(hours=1)
MAX_JITTER_SECONDS = 30.0


@dataclass
class PolledSource:
    config: Any
    connector: Any
    not_before: datetime | None = None
    failures: int = 0
    next_poll_at: datetime | None = None
    last_items: int | None = None

    def interval(self, now: datetime) -> timedelta:
        """The configured interval, or longer when the connector asks (a read budget)."""
        adaptive = getattr(self.connector, "interval", None)
        wanted = adaptive(now) if callable(adaptive) else None
        return max(self.config.interval, wanted or self.config.interval)

    def status(self, now: datetime) -> dict[str, Any]:
        extra = getattr(self.connector, "status", None)
        return extra(now) if callable(extra) else {}


class Coordinator:
    def __init__(self, pipeline: Pipeline, store: Store, metrics: Metrics, clock: Any):
        self.pipeline = pipeline
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.sources: dict[str, PolledSource] = {}
        self._jobs: Jobs | None = None

    def add(self, config: Any, connector: Any) -> None:
        self.sources[config.id] = PolledSource(config, connector)

    def schedule(self, jobs: Jobs) -> None:
        """First polls spread over a few seconds, then each source re-arms itself."""
        self._jobs = jobs
        now = self.clock.now()
        for source_id, polled in self.sources.items():
            spread = min(polled.config.interval.total_seconds(), 5.0) * random.random()
            polled.next_poll_at = now + timedelta(seconds=spread)
            jobs.at(polled.next_poll_at, self._poll_and_rearm, source_id,
                    job_id=f"poll:{source_id}")

    async def _poll_and_rearm(self, source_id: str) -> None:
        try:
            await self.poll(source_id)
        finally:
            polled = self.sources[source_id]
            if self._jobs is not None and polled.next_poll_at is not None:
                self._jobs.at(polled.next_poll_at, self._poll_and_rearm, source_id,
                              job_id=f"poll:{source_id}")

    async def poll(self, source_id: str) -> str:
        """One poll; returns the outcome label (ok, error, rate_limited, auth_failed, skipped)."""
        polled = self.sources[source_id]
        now = self.clock.now()
        if polled.not_before and now < polled.not_before:
            polled.next_poll_at = polled.not_before
            return "skipped"
        try:
            batch, stored = await self._fetch_and_store(polled, now)
        except RateLimited as exc:
            outcome = "rate_limited"
            wait = timedelta(seconds=max(exc.retry_after, 1))
            await self._failed(polled, outcome, exc, now, wait)
        except AuthFailed as exc:
            outcome = "auth_failed"
            await self._failed(polled, outcome, exc, now, MAX_BACKOFF)
        except (SourceError, TimeoutError, OSError) as exc:
            outcome = "error"
            await self._failed(polled, outcome, exc, now, self._backoff(polled))
        except Exception as exc:
            log.exception("source %s: unexpected failure while polling", source_id)
            outcome = "error"
            await self._failed(polled, outcome, exc, now, self._backoff(polled), logged=True)
        else:
            outcome = "ok"
            self._succeeded(polled, batch, stored, now)
        self.metrics.polls.labels(source=source_id, outcome=outcome).inc()
        return outcome

    def _succeeded(self, polled: PolledSource, batch: Batch, stored: int, now: datetime) -> None:
        source_id = polled.config.id
        if polled.failures:
            log.warning("source %s recovered after %d failed polls", source_id, polled.failures)
        polled.failures = 0
        polled.last_items = stored
        interval = polled.interval(now)
        jitter = timedelta(seconds=random.uniform(0, min(interval.total_seconds() / 10,
                                                          MAX_JITTER_SECONDS)))
        polled.next_poll_at = now + interval + jitter
        polled.not_before = batch.not_before if batch.not_before and batch.not_before > now \
            else None
        if polled.not_before:
            polled.next_poll_at = max(polled.next_poll_at, polled.not_before)
        self.metrics.last_success.labels(source=source_id).set(now.timestamp())
        self._export_budget(polled, now)

    def _export_budget(self, polled: PolledSource, now: datetime) -> None:
        remaining = polled.status(now).get("read_budget", {}).get("remaining")
        if remaining is not None:
            self.metrics.read_budget.labels(source=polled.config.id).set(remaining)

    async def _fetch_and_store(self, polled: PolledSource, now: datetime) -> tuple[Batch, int]:
        config = polled.config
        async with self.store.read() as session:
            cursor, first_poll = await load_cursor(session, config.id)
        batch = await asyncio.wait_for(
            polled.connector.fetch(cursor, now), config.timeout.total_seconds()
        )
        queue_after = now - config.backfill if first_poll else None
        result = await self.pipeline.ingest(
            SourceInfo(config.id, config.kind, config.channel),
            batch.items,
            cursor=batch.cursor,
            save_cursor=True,
            rejected=batch.rejected,
            queue_after=queue_after,
        )
        return batch, len(result.stored)

    def _backoff(self, polled: PolledSource) -> timedelta:
        base = polled.config.interval
        return min(base * (2 ** min(polled.failures, 10)), MAX_BACKOFF)

    async def _failed(
        self,
        polled: PolledSource,
        outcome: str,
        exc: BaseException,
        now: datetime,
        delay: timedelta,
        logged: bool = False,
    ) -> None:
        source_id = polled.config.id
        message = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            message = f"no answer within {polled.config.timeout.total_seconds():g}s (timeout)"
        if polled.failures == 0 and not logged:
            log.warning(
                "source %s is failing (%s): %s; retrying in %ds",
                source_id,
                outcome,
                message,
                delay.total_seconds(),
            )
        polled.failures += 1
        polled.not_before = now + delay
        polled.next_poll_at = polled.not_before
        async with self.store.write() as session:
            await record_poll_failure(session, source_id, polled.config.kind, message, now,
                                      outcome)

    async def close(self) -> None:
        for polled in self.sources.values():
            await polled.connector.close()
