"""Replicas share the polled sources: each holds its fair share, a dead replica's sources
go to the survivors within two poll intervals, a newcomer gets some, and no source ever
has two pollers.

In-process: several coordinators with their own holder ids and connection pools on one
PostgreSQL database, their lease rounds run side by side on a clock the test moves.
PostgreSQL only, by design: SQLite is one process per file.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.rss import RssSource
from listener import db
from listener.clock import FixedClock
from listener.coordinator import Coordinator
from listener.leases import holders, renew_every
from listener.store import Store

INTERVAL = timedelta(seconds=60)
ROUND = timedelta(seconds=renew_every([INTERVAL]))  # how often each replica's round runs
SOURCES = [f"feed-{n}" for n in range(6)]


@pytest.fixture
def pg_url(db_url: str) -> str:
    if db_url.startswith("sqlite"):
        pytest.skip("replicas share PostgreSQL; SQLite is one process by design")
    return db_url


class IdleConnector:
    """Polls are not the point here: only who may poll."""

    async def close(self) -> None:
        return None


class Cluster:
    """Replicas on one database and one clock; rounds run concurrently, and a watcher
    checks at every switch between them that no source has two holders."""

    def __init__(self, url: str, clock: FixedClock):
        self.url, self.clock = url, clock
        self.replicas: dict[str, Coordinator] = {}
        self.dead: set[str] = set()
        self.last_held = {source: clock.now() for source in SOURCES}

    def start(self, name: str) -> Coordinator:
        # Pipeline and metrics are never reached: only lease rounds run, no polls.
        replica = Coordinator(None, Store.open(self.url), None, self.clock,  # type: ignore[arg-type]
                              holder=f"host:{name}")
        for source in SOURCES:
            replica.add(RssSource(id=source, kind="rss", url="http://127.0.0.1:9/feed.xml",
                                  interval=INTERVAL), IdleConnector())
        self.replicas[name] = replica
        return replica

    def kill(self, name: str) -> None:
        """SIGKILL: no more rounds, no release; its leases simply run out."""
        self.dead.add(name)

    async def stop(self, name: str) -> None:
        await self.replicas[name].close()
        del self.replicas[name]

    def pollers(self) -> Counter[str]:
        """Per source, how many replicas believe they may poll it now (the dead included:
        a hung replica would go on polling until its leases run out)."""
        now = self.clock.now()
        return Counter(source for replica in self.replicas.values()
                       for source, until in replica.held.items() if until > now)

    def shares(self) -> dict[str, int]:
        now = self.clock.now()
        return {name: sum(until > now for until in replica.held.values())
                for name, replica in self.replicas.items() if name not in self.dead}

    async def round(self) -> None:
        """One round period later, every live replica's round, concurrently."""
        self.clock.advance(ROUND)
        rounds = asyncio.gather(*(replica.renew_leases()
                                  for name, replica in self.replicas.items()
                                  if name not in self.dead))
        while not rounds.done():
            assert max(self.pollers().values(), default=0) <= 1, self.pollers()
            await asyncio.sleep(0)
        await rounds
        now = self.clock.now()
        for source in self.pollers():
            self.last_held[source] = now
        gaps = {source: now - held for source, held in self.last_held.items()}
        assert max(gaps.values()) <= 2 * INTERVAL, gaps

    async def until_shares(self, wanted: list[int], within: timedelta) -> timedelta:
        """Run rounds until the live replicas hold `wanted` sources; how long it took."""
        began = self.clock.now()
        while sorted(self.shares().values()) != wanted:
            assert self.clock.now() - began < within, self.shares()
            await self.round()
        return self.clock.now() - began

    async def close(self) -> None:
        for replica in self.replicas.values():
            await replica.store.close()


@pytest.fixture
async def cluster(pg_url: str) -> AsyncIterator[Cluster]:
    store = Store.open(pg_url)
    await db.migrate(store.engine)
    await store.close()
    group = Cluster(pg_url, FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)))
    yield group
    await group.close()


async def test_replicas_share_sources_and_take_over_a_dead_ones(cluster: Cluster) -> None:
    cluster.start("a")
    await cluster.round()
    assert cluster.shares() == {"a": 6}  # alone, it polls everything

    cluster.start("b")
    cluster.start("c")
    await cluster.until_shares([2, 2, 2], within=2 * INTERVAL)

    cluster.kill("c")
    await cluster.until_shares([3, 3], within=2 * INTERVAL)
    store = cluster.replicas["a"].store
    async with store.read() as session:
        assert set((await holders(session)).values()) == {"host:a", "host:b"}

    cluster.start("d")  # a newcomer gets its share from the others
    await cluster.until_shares([2, 2, 2], within=2 * INTERVAL)

    await cluster.stop("d")  # a clean stop hands over at once, not after the leases run out
    await cluster.until_shares([3, 3], within=INTERVAL)


async def test_a_source_handed_over_is_polled_at_once_by_its_new_holder(
        cluster: Cluster) -> None:
    first = cluster.start("a")
    await cluster.round()
    cluster.start("b")
    await cluster.until_shares([3, 3], within=2 * INTERVAL)
    moved = {source for source in SOURCES if source not in first.held}
    second = cluster.replicas["b"]
    assert set(second.held) == moved
    # At once: within the few seconds' start-up spread, not a whole interval later.
    soon = cluster.clock.now() + timedelta(seconds=5)
    assert all(second.sources[source].next_poll_at <= soon for source in moved)


async def test_a_source_backing_off_stays_with_its_replica(cluster: Cluster) -> None:
    """Its new holder would poll at once and cut the upstream's Retry-After short."""
    first = cluster.start("a")
    await cluster.round()
    backing_off = set(SOURCES[:3])
    for source in backing_off:
        first.sources[source].failures = 1
        first.sources[source].not_before = cluster.clock.now() + timedelta(minutes=10)
    cluster.start("b")
    await cluster.until_shares([3, 3], within=2 * INTERVAL)
    assert set(first.held) == backing_off
