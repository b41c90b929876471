"""The one owner of polling: schedule with jitter, back off on errors, honour rate limits,
keep health, and hand each batch to the pipeline together with its cursor.

Connectors only raise typed errors; logging happens here and only on the down and
recovered transitions, so a source that is down for an hour logs twice, not 60 times.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import AuthFailed, RateLimited, SourceError
from listener.jobs import Jobs
from listener.metrics import Metrics
from listener.pipeline.ingest import Pipeline, SourceInfo
from listener.store import Store
from listener.store.ingest import load_cursor, record_poll_failure

log = logging.getLogger("listener.coordinator")
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class PolledSource:
    config: Any
    connector: Any
    not_before: datetime | None = None
    failures: int = 0


class Coordinator:
    def __init__(self, pipeline: Pipeline, store: Store, metrics: Metrics, clock: Any):
        self.pipeline = pipeline
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.sources: dict[str, PolledSource] = {}

    def add(self, config: Any, connector: Any) -> None:
        self.sources[config.id] = PolledSource(config, connector)

    def schedule(self, jobs: Jobs) -> None:
        for source_id, polled in self.sources.items():
            interval = polled.config.interval.total_seconds()
            jobs.every(interval, self.poll, source_id, job_id=f"poll:{source_id}",
                       first_run=self.clock.now(), jitter=max(1, interval / 10))

    async def poll(self, source_id: str) -> str:
        """One poll; returns the outcome label (ok, error, rate_limited, auth_failed, skipped)."""
        polled = self.sources[source_id]
        now = self.clock.now()
        if polled.not_before and now < polled.not_before:
            return "skipped"
        try:
            await self._fetch_and_store(polled, now)
        except RateLimited as exc:
            outcome = "rate_limited"
            delay = timedelta(seconds=max(exc.retry_after, 1))
            await self._failed(polled, outcome, exc, now, delay)
        except AuthFailed as exc:
            await self._failed(polled, "auth_failed", exc, now, MAX_BACKOFF)
            outcome = "auth_failed"
        except (SourceError, TimeoutError, OSError) as exc:
            outcome = "error"
            await self._failed(polled, outcome, exc, now, self._backoff(polled))
        except Exception as exc:
            log.exception("source %s: unexpected failure while polling", source_id)
            outcome = "error"
            await self._failed(polled, outcome, exc, now, self._backoff(polled), logged=True)
        else:
            outcome = "ok"
            if polled.failures:
                log.warning("source %s recovered after %d failed polls", source_id, polled.failures)
            polled.failures = 0
            polled.not_before = None
            self.metrics.last_success.labels(source=source_id).set(now.timestamp())
        self.metrics.polls.labels(source=source_id, outcome=outcome).inc()
        return outcome

    async def _fetch_and_store(self, polled: PolledSource, now: datetime) -> None:
        config = polled.config
        async with self.store.read() as session:
            cursor, first_poll = await load_cursor(session, config.id)
        batch = await asyncio.wait_for(
            polled.connector.fetch(cursor, now), config.timeout.total_seconds()
        )
        queue_after = now - config.backfill if first_poll else None
        await self.pipeline.ingest(
            SourceInfo(config.id, config.kind),
            batch.items,
            cursor=batch.cursor,
            save_cursor=True,
            rejected=batch.rejected,
            queue_after=queue_after,
        )

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
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
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
        async with self.store.write() as session:
            await record_poll_failure(session, source_id, polled.config.kind, message, now)

    async def close(self) -> None:
        for polled in self.sources.values():
            await polled.connector.close()
