"""The one owner of polling: schedule with jitter, back off on errors, honour rate limits,
keep health, and hand each batch to the pipeline together with its cursor.

Connectors only raise typed errors; logging happens here and only on the down and
recovered transitions, so a source that is down for an hour logs twice, not 60 times.
Each source re-arms its own next poll after every poll, so a connector can stretch its
interval (the X read budget) and a rate-limit window moves the next poll exactly.

With a lease holder id (replicas on PostgreSQL, see `listener.leases`) a source is
polled only while this process holds its lease: a lease round every few seconds renews
ours and claims free or expired ones up to this replica's fair share, lets go of the
extra ones when another replica joins, and a source taken over is polled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import AuthFailed, Batch, RateLimited, SourceError
from listener.jobs import Jobs
from listener.leases import (
    claim,
    fair_share,
    forget_dead,
    heartbeat,
    lease_ttl,
    let_go,
    release,
    renew_every,
)
from listener.metrics import Metrics
from listener.outage import database_unreachable
from listener.pipeline.ingest import Pipeline, SourceInfo
from listener.redact import Redactor
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


class Abandoned(Exception):
    """A poll's upstream request dropped because the service is stopping."""


class Coordinator:
    def __init__(self, pipeline: Pipeline, store: Store, metrics: Metrics, clock: Any,
                 holder: str | None = None):
        """`holder`: this replica's lease holder id; None polls every source (one process)."""
        self.pipeline = pipeline
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.holder = holder
        self.sources: dict[str, PolledSource] = {}
        self.held: dict[str, datetime] = {}  # source id -> when our lease runs out
        self._polling: set[str] = set()  # polls under way: never handed over mid-poll
        self._fetches: set[asyncio.Task[Batch]] = set()  # upstream requests in flight
        self._stopping = False
        self._jobs: Jobs | None = None
        self._leases_started = False
        self._lease_failing = False

    def add(self, config: Any, connector: Any) -> None:
        self.sources[config.id] = PolledSource(config, connector)

    def schedule(self, jobs: Jobs) -> None:
        """First polls spread over a few seconds, then each source re-arms itself."""
        self._jobs = jobs
        now = self.clock.now()
        if self.holder is not None and self.sources:
            seconds = renew_every(p.config.interval for p in self.sources.values())
            jobs.every(seconds, self.renew_leases, job_id="leases", first_run=now)
            return
        for source_id in self.sources:
            self._arm_first_poll(source_id, now)

    def _arm_first_poll(self, source_id: str, now: datetime, spread: bool = True) -> None:
        polled = self.sources[source_id]
        wait = min(polled.config.interval.total_seconds(), 5.0) * random.random() if spread \
            else 0.0
        polled.next_poll_at = now + timedelta(seconds=wait)
        if self._jobs is not None:
            self._jobs.at(polled.next_poll_at, self._poll_and_rearm, source_id,
                          job_id=f"poll:{source_id}")

    async def renew_leases(self) -> None:
        """One lease round: say we are alive, let go of the sources above our fair share,
        renew the rest and claim free or expired ones up to the share. A source newly ours
        is polled now; on the first round, spread over a few seconds as without leases."""
        assert self.holder is not None
        now = self.clock.now()
        first_round, self._leases_started = not self._leases_started, True
        extra: list[str] = []
        try:
            shortest = min((p.config.interval for p in self.sources.values()),
                           default=timedelta(minutes=1))
            async with self.store.write() as session:
                live = await heartbeat(session, self.holder, now, lease_ttl(shortest))
            async with self.store.write() as session:
                await forget_dead(session, now)
            share = fair_share(len(self.sources), live)
            extra = self._extra_sources(now, share)
            for source_id in extra:  # stop polling it before another replica may start
                del self.held[source_id]
            async with self.store.write() as session:
                won = await self._claim_share(session, now, share, extra)
        except Exception as exc:
            if not self._lease_failing:  # once per outage, like a failing source
                reason = (str(exc) or type(exc).__name__).splitlines()[0]
                log.warning("source leases: renewal failed (%s); polling only until they "
                            "run out", reason)
            self._lease_failing = True
            return
        if self._lease_failing:
            log.warning("source leases: renewal works again")
        self._lease_failing = False
        # A lease that ran out while renewals failed (database down) stopped its polls:
        # winning it back re-arms them like a new one.
        still_held = {s for s, until in self.held.items() if until > now}
        for source_id in won.keys() - still_held:
            log.info("source %s: now polled by this replica (%s)", source_id, self.holder)
            self._arm_first_poll(source_id, now, spread=first_round)
        for source_id in extra:
            log.info("source %s: handed to another replica (fair share: %d of %d sources, "
                     "%d replicas)", source_id, share, len(self.sources), live)
        for source_id in self.held.keys() - won.keys():
            log.warning("source %s: lease lost to another replica; no longer polling it",
                        source_id)
        self.held = won

    def _extra_sources(self, now: datetime, share: int) -> list[str]:
        """Sources to hand over so we hold no more than `share`: never one being polled,
        healthy ones first (the next holder polls at once, which must not cut a back-off
        short), the one due soonest first (so that immediate poll is about on time)."""
        surplus = len(self.held) - share
        if surplus <= 0:
            return []

        def order(source_id: str) -> tuple[bool, datetime]:
            polled = self.sources[source_id]
            waiting = polled.failures > 0 or (polled.not_before or now) > now
            return waiting, polled.next_poll_at or now

        idle = sorted((s for s in self.held if s not in self._polling), key=order)
        return idle[:surplus]

    async def _claim_share(self, session: Any, now: datetime, share: int,
                           extra: list[str]) -> dict[str, datetime]:
        """In source id order (so two replicas' rounds never deadlock): drop `extra`, renew
        what we keep, claim free or expired sources while under `share`."""
        assert self.holder is not None
        room = share - len(self.held)
        won = {}
        for source_id, polled in sorted(self.sources.items()):
            if source_id in extra:
                await let_go(session, source_id, self.holder)
                continue
            kept = source_id in self.held
            if not kept and room <= 0:
                continue
            ttl = lease_ttl(polled.config.interval)
            if await claim(session, source_id, self.holder, now, ttl):
                won[source_id] = now + ttl
                room -= 0 if kept else 1
        return won

    def _may_poll(self, source_id: str) -> bool:
        if self.holder is None:
            return True
        until = self.held.get(source_id)
        return until is not None and self.clock.now() < until

    async def _poll_and_rearm(self, source_id: str) -> None:
        if not self._may_poll(source_id):
            return  # the lease round arms it again if it comes back to us
        self._polling.add(source_id)
        try:
            await self.poll(source_id)
        finally:
            self._polling.discard(source_id)
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
        except Abandoned:
            return "abandoned"
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
            outcome = "error"
            # The database going away mid-poll is no bug of the source: no traceback. If
            # it is still away, recording the failure raises and the job's outage log
            # says so once.
            if not database_unreachable(exc):
                log.exception("source %s: unexpected failure while polling", source_id)
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
        fetch = asyncio.ensure_future(asyncio.wait_for(
            polled.connector.fetch(cursor, now), config.timeout.total_seconds()))
        self._fetches.add(fetch)
        try:
            batch = await fetch
        except asyncio.CancelledError:
            if self._stopping and fetch.cancelled():
                raise Abandoned from None
            raise
        finally:
            self._fetches.discard(fetch)
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
        message = Redactor.of(polled.config)(str(exc) or type(exc).__name__)
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

    def abandon_fetches(self) -> None:
        """At shutdown, before waiting for the jobs: a poll still waiting on its upstream
        has stored nothing (the next start fetches it again), so it is dropped rather than
        holding the stop for up to its `timeout`."""
        self._stopping = True
        for fetch in self._fetches:
            fetch.cancel()

    async def close(self) -> None:
        if self.holder is not None and self.held:
            with contextlib.suppress(Exception):  # unreleased leases simply run out
                async with self.store.write() as session:
                    await release(session, self.holder)
            self.held = {}
        for polled in self.sources.values():
            await polled.connector.close()
