"""The backlog drain and hand-offs: routing again whenever capacity may have changed.

Ingest routes a mention once, when it arrives; if nobody could take it then, it waits
unassigned. This re-runs the same pure router over the waiting mentions as soon as
capacity may have appeared (an answer, an agent back, a shift starting, a config
change), and moves open work off an agent who went away or whose shift ended: at that
moment, and again in the sweep at start-up and every 30 s, so a restart across a shift
end leaves nothing with someone who is not there. Affinity applies here as at ingest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from listener.live import mentions_touched
from listener.models import Agent, Mention
from listener.outage import OutageLog
from listener.pipeline.route import Routing
from listener.store import Store
from listener.store.queries import open_counts
from listener.store.routing import (
    ConversationOwner,
    away_agents,
    held_by,
    last_assigned,
    lock_routing,
    owners_of,
    route_to,
    set_agent_status,
    unassigned_open,
)
from sla.policy import MentionFacts

log = logging.getLogger("listener.backlog")
SWEEP_SECONDS = 30
# A shift boundary job fires this long after the boundary, so `covers` already agrees.
BOUNDARY_SLACK = timedelta(seconds=1)


def facts_of(mention: Mention, segment: str | None) -> MentionFacts:
    return MentionFacts(channel=mention.channel, source=mention.source, lang=mention.lang,
                        segment=segment, priority=mention.priority)


def conversation_owner(mention: Mention, owners: Sequence[ConversationOwner],
                       window: timedelta, exclude: str | None = None) -> str | None:
    """The agent who has, or last had, this mention's conversation: the newest assigned
    mention of the same thread on its source, or of the same customer within `window`.

    Ingest's rule (`find_owner`), except that the window reaches both ways: the drain
    meets a waiting customer's mentions by deadline, not in the order they were written.
    `exclude` is the agent a hand-off moves the work away from."""
    best = None
    for owner in owners:
        if owner.assignee == exclude:
            continue
        same_thread = bool(mention.thread) and owner.source == mention.source and \
            owner.thread == mention.thread
        same_customer = mention.customer_id is not None and \
            owner.customer_id == mention.customer_id and \
            abs(owner.created_at - mention.created_at) <= window
        if (same_thread or same_customer) and (best is None or
                                               owner.created_at > best.created_at):
            best = owner
    return best.assignee if best else None


@dataclass
class Desk:
    """What one routing transaction knows and updates as it assigns: who is away, each
    agent's load, the round-robin position and who has which conversation."""

    away: set[str]
    loads: dict[str, int]
    last: str | None
    owners: list[ConversationOwner] = field(default_factory=list)

    @classmethod
    async def read(cls, session: Any) -> Desk:
        """Flushes first: the loads must count this transaction's own earlier moves (a
        sweep hands off several agents, then drains, in one transaction)."""
        await session.flush()
        return cls(await away_agents(session), await open_counts(session),
                   await last_assigned(session))

    async def learn_owners(self, session: Any, mentions: Sequence[Mention],
                           window: timedelta) -> None:
        """Everyone who had a conversation of these mentions: one query for the batch."""
        if mentions:
            self.owners = await owners_of(
                session, {m.customer_id for m in mentions if m.customer_id is not None},
                {(m.source, m.thread) for m in mentions if m.thread},
                min(m.created_at for m in mentions) - window)

    def took(self, agent_id: str, mention: Mention) -> None:
        self.loads[agent_id] = self.loads.get(agent_id, 0) + 1
        self.last = agent_id
        self.owners.append(ConversationOwner(mention.customer_id, mention.source,
                                             mention.thread, mention.created_at, agent_id))


class Backlog:
    def __init__(self, store: Store, routing: Routing, clock: Any):
        self.store = store
        self.routing = routing
        self.clock = clock
        self._jobs: Any = None
        self._dirty = False
        self._running = False
        self._lock = asyncio.Lock()
        self._outage = OutageLog(log, "backlog routing", SWEEP_SECONDS,
                                 f"the sweep retries every {SWEEP_SECONDS}s")
        # Told which mentions moved, after each commit that moved any (the live queue).
        self.on_change: Callable[[list[int]], None] | None = None

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Any]:
        """A routing transaction: one at a time in this process, and on PostgreSQL also
        against ingest and other processes (`lock_routing`)."""
        async with self._lock, self.store.write() as session:
            await lock_routing(session)
            with mentions_touched(session) as moved:
                yield session
        if moved and self.on_change is not None:
            self.on_change(sorted(moved))

    # -- the work ---------------------------------------------------------------------

    async def drain(self, now: datetime) -> int:
        """Assign waiting mentions, most urgent first, to whoever can take them now.
        One transaction; returns how many were assigned."""
        async with self._write() as session:
            return await self._drain(session, now)

    async def _drain(self, session: Any, now: datetime) -> int:
        desk = await Desk.read(session)
        if not self._anyone_free(desk, now):
            return 0
        waiting = await unassigned_open(session)
        await desk.learn_owners(session, [m for m, _ in waiting], self.routing.affinity_window)
        assigned = 0
        for mention, segment in waiting:
            owner = conversation_owner(mention, desk.owners, self.routing.affinity_window)
            decision = self.routing.decide(facts_of(mention, segment), desk.loads, now,
                                           desk.last, desk.away, owner)
            if decision.agent_id is None:
                continue
            route_to(session, mention, decision.agent_id, f"backlog: {decision.reason}",
                     now)
            desk.took(decision.agent_id, mention)
            assigned += 1
        if assigned:
            log.info("backlog: assigned %d waiting mention(s)", assigned)
        return assigned

    def _anyone_free(self, desk: Desk, now: datetime) -> bool:
        """Skip reading the backlog when no agent could take anything at all."""
        return any(
            a.id not in desk.away and (a.shift is None or a.shift.covers(now))
            and desk.loads.get(a.id, 0) < a.max_open
            for a in self.routing.agents
        )

    async def hand_off(self, agent_id: str, why: str, now: datetime, actor: str = "router",
                       session: Any = None) -> int:
        """With `routing.handoff: reassign`, route `agent_id`'s open mentions again (their
        owner is away or off shift, so never back to them); returns how many moved."""
        if self.routing.handoff != "reassign":
            return 0
        if session is None:
            async with self._write() as own:
                return await self._hand_off(own, agent_id, why, now, actor)
        return await self._hand_off(session, agent_id, why, now, actor)

    async def _hand_off(self, session: Any, agent_id: str, why: str, now: datetime,
                        actor: str) -> int:
        held = await held_by(session, agent_id)
        if not held:
            return 0
        desk = await Desk.read(session)
        await desk.learn_owners(session, [m for m, _ in held], self.routing.affinity_window)
        desk.away.add(agent_id)
        desk.loads.pop(agent_id, None)
        label = f"handoff: {agent_id} {why}"
        for mention, segment in held:
            owner = conversation_owner(mention, desk.owners, self.routing.affinity_window,
                                       exclude=agent_id)
            decision = self.routing.decide(facts_of(mention, segment), desk.loads, now,
                                           desk.last, desk.away, owner)
            if decision.agent_id is None:
                route_to(session, mention, None,
                         f"{label}; nobody on shift ({decision.reason})", now, actor)
                continue
            route_to(session, mention, decision.agent_id, f"{label}; {decision.reason}",
                     now, actor)
            desk.took(decision.agent_id, mention)
        log.info("%s: %d open mention(s) routed again", label, len(held))
        return len(held)

    async def set_status(self, agent_id: str, status: str, actor: str, now: datetime
                         ) -> Agent:
        """An agent going away hands their work off in the same transaction; one coming
        back is new capacity, so the backlog drains right after."""
        async with self._write() as session:
            agent = await set_agent_status(session, agent_id, status)
            if status == "away":
                await self.hand_off(agent_id, "away", now, actor, session=session)
        if status == "available":
            await self.drain(now)
        return agent

    async def sweep(self, now: datetime) -> int:
        """Hand off the work of agents who are away or off shift, then drain; returns how
        many waiting mentions were assigned. Runs at start-up, at every shift boundary
        and every 30 s, so a restart or a missed boundary job spanning a shift end never
        leaves work with someone who is not there. One transaction."""
        async with self._write() as session:
            if self.routing.handoff == "reassign":
                for agent_id, why in await self._absent_holders(session, now):
                    await self._hand_off(session, agent_id, why, now, "router")
            return await self._drain(session, now)

    async def _absent_holders(self, session: Any, now: datetime) -> list[tuple[str, str]]:
        """(agent, why) for each configured agent holding open work while away or off
        shift, in config order."""
        loads, away = await open_counts(session), await away_agents(session)
        found = []
        for agent in self.routing.agents:
            if not loads.get(agent.id):
                continue
            if agent.id in away:
                found.append((agent.id, "away"))
            elif agent.shift is not None and not agent.shift.covers(now):
                found.append((agent.id, "shift ended"))
        return found

    async def shift_tick(self, now: datetime) -> int:
        """At a shift boundary: hand off the agents whose shift ended, then drain for
        those whose shift started."""
        return await self.sweep(now)

    def next_shift_change(self, now: datetime) -> datetime | None:
        changes = [a.shift.next_change(now) for a in self.routing.agents if a.shift]
        return min(changes) if changes else None

    # -- scheduling (background only) --------------------------------------------------

    def start(self, jobs: Any) -> None:
        """Sweep now (config may have raised max_open or added agents, and shifts may
        have ended while the service was down), every 30 s, and at every shift boundary;
        drain on every wake."""
        self._jobs = jobs
        jobs.every(SWEEP_SECONDS, self._run, job_id="backlog-sweep",
                   first_run=datetime.now(UTC))
        self._arm()

    def wake(self) -> None:
        """Capacity may have appeared: sweep and drain within moments, not at the next
        periodic run."""
        self._dirty = True
        if self._jobs is not None and not self._running:
            self._jobs.at(datetime.now(UTC), self._run, job_id="backlog-wake")

    async def _run(self) -> None:
        self._dirty = True
        if self._running:
            return
        self._running = True
        try:
            while self._dirty:
                self._dirty = False
                await self.sweep(self.clock.now())
            self._outage.succeeded()
        except Exception as exc:
            if self._outage.failed(exc) is None:
                log.exception("backlog drain failed; the next sweep retries")
        finally:
            self._running = False

    async def _boundary(self) -> None:
        try:
            await self.shift_tick(self.clock.now())
            self._outage.succeeded()
        except Exception as exc:
            if self._outage.failed(exc) is None:
                log.exception("shift change routing failed; the next sweep drains")
        finally:
            self._arm()

    def _arm(self) -> None:
        change = self.next_shift_change(self.clock.now())
        if change is not None and self._jobs is not None:
            self._jobs.at(change + BOUNDARY_SLACK, self._boundary, job_id="backlog-shift")


BACKLOG = web.AppKey("backlog", Backlog)
