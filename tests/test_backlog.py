"""The backlog on real databases (SQLite and PostgreSQL): affinity in the drain and in
hand-offs, the sweep that catches a shift end missed while the service was down, and
`max_open` holding under concurrent ingests and drains."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connectors.base import RawAuthor, RawItem
from listener.app import build_services, prepare_database
from listener.backlog import Backlog
from listener.clock import FixedClock
from listener.jobs import Jobs
from listener.models import Mention, MentionEvent
from listener.pipeline.ingest import SourceInfo
from listener.store.actions import assign
from listener.store.queries import open_counts
from listener.store.routing import set_agent_status
from tests.conftest import BASE_CONFIG, IST, MONDAY_10, make_config

SOURCE = SourceInfo("x", "twitter", "twitter")
FRIDAY_17 = datetime(2026, 11, 20, 17, 0, tzinfo=IST)
SATURDAY_15 = datetime(2026, 11, 21, 15, 0, tzinfo=IST)  # after Saturday's hours
MONDAY_1830 = datetime(2026, 11, 23, 18, 30, tzinfo=IST)


def always_on(*ids: str, max_open: int = 10) -> list[dict[str, Any]]:
    return [{"id": i, "channels": ["twitter"], "languages": ["en"], "max_open": max_open}
            for i in ids]


NIGHT = {"id": "gece", "channels": ["twitter"], "languages": ["tr", "en"],
         "shift": "daily 18:00-09:00"}


async def ready(db_url: str, clock: FixedClock, enricher: Any, **overrides: Any) -> Any:
    services = build_services(make_config(db_url, **overrides), clock=clock,
                              enricher=enricher)
    await prepare_database(services, migrate=True)
    return services


def tweet(n: int, handle: str, at: datetime, thread: str | None = None) -> RawItem:
    return RawItem(external_id=f"t{n}", text="Where is my refund?", created_at=at,
                   channel="twitter", author=RawAuthor(handle, handle.title()), lang="en",
                   thread=thread)


async def ingest(services: Any, *items: RawItem) -> None:
    await services.pipeline.ingest(SOURCE, list(items))


async def holders(services: Any) -> dict[str, str | None]:
    async with services.store.read() as session:
        return {m.external_id: m.assignee for m in await session.scalars(select(Mention))}


async def last_reason(services: Any, external_id: str) -> tuple[str, str | None, str]:
    """(kind, actor, reason) of the mention's newest assignment event."""
    async with services.store.read() as session:
        event = await session.scalar(
            select(MentionEvent).join(Mention, Mention.id == MentionEvent.mention_id)
            .where(Mention.external_id == external_id,
                   MentionEvent.kind.in_(("assigned", "unassigned")))
            .order_by(MentionEvent.id.desc()).limit(1))
    assert event is not None
    return event.kind, event.actor, event.data.get("reason")


async def move_to(services: Any, external_id: str, agent_id: str, now: datetime) -> None:
    """A lead moving a mention by hand."""
    async with services.store.write() as session:
        mention_id = await session.scalar(
            select(Mention.id).where(Mention.external_id == external_id))
        await assign(session, mention_id, agent_id, "lead", now)


async def test_the_drain_keeps_a_customer_with_their_agent(db_url: str, enricher: Any
                                                           ) -> None:
    clock = FixedClock(FRIDAY_17)
    services = await ready(db_url, clock, enricher)
    backlog = Backlog(services.store, services.pipeline.routing, clock)
    await ingest(services, tweet(1, "bob", FRIDAY_17), tweet(2, "jane", FRIDAY_17))
    assert await holders(services) == {"t1": "ayse", "t2": "john"}

    clock.moment = SATURDAY_15  # nobody on shift: everything waits
    await ingest(services, tweet(3, "jane", SATURDAY_15 - timedelta(minutes=3)),
                 tweet(4, "kim", SATURDAY_15 - timedelta(minutes=2)),
                 tweet(5, "kim", SATURDAY_15 - timedelta(minutes=1)))
    assert (await holders(services))["t3"] is None

    assert await backlog.drain(MONDAY_10) == 3
    now_held = await holders(services)
    assert now_held["t3"] == "john"  # least loaded would have said ayse (a tie, first)
    assert (await last_reason(services, "t3"))[2] == "backlog: affinity: john has this customer"
    assert now_held["t4"] == now_held["t5"]  # kim's two waiting posts stay together
    assert (await last_reason(services, "t5"))[2] == (
        f"backlog: affinity: {now_held['t4']} has this customer")
    await services.store.close()


async def test_a_hand_off_follows_affinity_and_never_returns_to_the_leaver(
        db_url: str, clock: FixedClock, enricher: Any) -> None:
    services = await ready(db_url, clock, enricher, agents=always_on("a", "b", "c"))
    backlog = Backlog(services.store, services.pipeline.routing, clock)
    now = clock.now()
    await ingest(services, tweet(1, "bob", now), tweet(2, "jane", now),
                 tweet(3, "carl", now), tweet(4, "jane", now), tweet(5, "dan", now),
                 tweet(6, "dan", now))
    for external_id in ("t4", "t5", "t6"):  # a lead gives "a" more of the work
        await move_to(services, external_id, "a", now)
    assert await holders(services) == {"t1": "a", "t2": "b", "t3": "c", "t4": "a",
                                       "t5": "a", "t6": "a"}

    await backlog.set_status("a", "away", "a", now)
    after = await holders(services)
    assert "a" not in after.values()
    assert after["t4"] == "b"  # jane's other conversation is with b
    assert await last_reason(services, "t4") == (
        "assigned", "a", "handoff: a away; affinity: b has this customer")
    assert after["t5"] == after["t6"]  # dan's two posts go to one new agent
    assert (await last_reason(services, "t6"))[2] == (
        f"handoff: a away; affinity: {after['t5']} has this customer")
    assert "affinity" not in (await last_reason(services, "t1"))[2]  # bob only had "a"
    await services.store.close()


async def wait_for(check: Any, seconds: float = 20) -> None:
    """Wait for background work without asserting on how long it took."""
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the background job never did it")


async def test_a_restart_after_a_shift_end_hands_the_work_off(db_url: str, enricher: Any
                                                               ) -> None:
    """The service was down at 18:00, so no boundary job ran: starting it again at 18:30
    hands ayse's and john's work to the night shift anyway."""
    clock = FixedClock(MONDAY_10)
    day = [*BASE_CONFIG["agents"], NIGHT]
    services = await ready(db_url, clock, enricher, agents=day)
    await ingest(services, tweet(1, "bob", MONDAY_10), tweet(2, "jane", MONDAY_10))
    assert await holders(services) == {"t1": "ayse", "t2": "john"}
    await services.store.close()

    clock.moment = MONDAY_1830
    restarted = await ready(db_url, clock, enricher, agents=day)
    backlog = Backlog(restarted.store, restarted.pipeline.routing, clock)
    jobs = Jobs()
    backlog.start(jobs)
    jobs.start()

    async def handed_off() -> bool:
        return set((await holders(restarted)).values()) == {"gece"}

    try:
        await wait_for(handed_off)
    finally:
        await jobs.drain()
    kind, actor, reason = await last_reason(restarted, "t1")
    assert (kind, actor) == ("assigned", "router")
    assert reason.startswith("handoff: ayse shift ended; ")
    assert (await last_reason(restarted, "t2"))[2].startswith("handoff: john shift ended; ")
    await restarted.store.close()


async def test_the_sweep_hands_off_an_away_agents_kept_work(db_url: str, clock: FixedClock,
                                                            enricher: Any) -> None:
    """Ayşe went away while the config said `handoff: keep`; the new config says
    reassign: the first sweep moves her work. With keep, the sweep leaves it."""
    keep = await ready(db_url, clock, enricher, routing={"handoff": "keep"})
    await ingest(keep, tweet(1, "bob", clock.now()))
    await Backlog(keep.store, keep.pipeline.routing, clock).set_status(
        "ayse", "away", "ayse", clock.now())
    assert await Backlog(keep.store, keep.pipeline.routing, clock).sweep(clock.now()) == 0
    assert await holders(keep) == {"t1": "ayse"}
    await keep.store.close()

    reassign = await ready(db_url, clock, enricher)
    await Backlog(reassign.store, reassign.pipeline.routing, clock).sweep(clock.now())
    assert await holders(reassign) == {"t1": "john"}
    assert (await last_reason(reassign, "t1"))[2].startswith("handoff: ayse away; ")
    await reassign.store.close()


async def set_statuses(services: Any, status: str, ids: Sequence[str]) -> None:
    async with services.store.write() as session:
        for agent_id in ids:
            await set_agent_status(session, agent_id, status)


async def test_concurrent_ingests_and_drains_never_exceed_max_open(
        db_url: str, clock: FixedClock, enricher: Any) -> None:
    """Many writers at once, each drain from its own Backlog as if in its own process: the
    routing lock, not luck, keeps every agent at or under max_open."""
    ids = ("a", "b", "c")
    services = await ready(db_url, clock, enricher, agents=always_on(*ids, max_open=4))
    now = clock.now()
    await set_statuses(services, "away", ids)  # the backlog builds up...
    await ingest(services, *(tweet(n, f"early{n}", now) for n in range(20)))
    await set_statuses(services, "available", ids)  # ...and capacity appears at once
    routing = services.pipeline.routing
    drains = [Backlog(services.store, routing, clock).drain(now) for _ in range(8)]
    ingests = [ingest(services, tweet(100 + n, f"late{n}", now)) for n in range(16)]
    work = [task for pair in zip(drains, ingests[:8], strict=True) for task in pair]
    await asyncio.gather(*work, *ingests[8:])
    async with services.store.read() as session:
        loads = await open_counts(session)
    assert loads == {"a": 4, "b": 4, "c": 4}  # full, and never over
    await services.store.close()


async def test_one_sweep_never_overfills_whoever_takes_over(db_url: str, enricher: Any
                                                              ) -> None:
    """Two hand-offs and a drain in one transaction all count each other's moves."""
    clock = FixedClock(MONDAY_10)
    night = {**NIGHT, "max_open": 2}
    services = await ready(db_url, clock, enricher, agents=[*BASE_CONFIG["agents"], night])
    await ingest(services, tweet(1, "bob", MONDAY_10), tweet(2, "jane", MONDAY_10))
    clock.moment = MONDAY_1830
    await ingest(services, tweet(3, "kim", MONDAY_1830 - timedelta(minutes=40)))
    assert await holders(services) == {"t1": "ayse", "t2": "john", "t3": "gece"}

    await Backlog(services.store, services.pipeline.routing, clock).sweep(MONDAY_1830)
    after = await holders(services)
    assert list(after.values()).count("gece") == 2
    assert sorted(k for k, v in after.items() if v is None) == ["t2"]
    assert (await last_reason(services, "t2"))[:2] == ("unassigned", "router")
    await services.store.close()
