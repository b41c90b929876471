"""The backlog drain and hand-offs: routing again whenever capacity may have changed.

Ingest routes a mention once, when it arrives; if nobody could take it then, it waits
unassigned. This re-runs the same pure router over the waiting mentions as soon as
capacity may have appeared (an answer, an agent back, a shift starting, a config
change), and moves open work off an agent who went away or whose shift ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from listener.models import Agent, Mention
from listener.pipeline.route import Routing
from listener.store import Store
from listener.store.queries import open_counts
from listener.store.routing import (
    away_agents,
    held_by,
    last_assigned,
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


class Backlog:
    def __init__(self, store: Store, routing: Routing, clock: Any):
        self.store = store
        self.routing = routing
        self.clock = clock
        self._jobs: Any = None
        self._on_shift: set[str] | None = None
        self._dirty = False
        self._running = False
        self._lock = asyncio.Lock()

    # -- the work ---------------------------------------------------------------------

    async def drain(self, now: datetime) -> int:
        """Assign waiting mentions, most urgent first, to whoever can take them now.
        One transaction; returns how many were assigned."""
        async with self._lock, self.store.write() as session:
            away = await away_agents(session)
            loads = await open_counts(session)
            if not self._anyone_free(away, loads, now):
                return 0
            last = await last_assigned(session)
            assigned = 0
            for mention, segment in await unassigned_open(session):
                decision = self.routing.decide(facts_of(mention, segment), loads, now, last,
                                               away)
                if decision.agent_id is None:
                    continue
                route_to(session, mention, decision.agent_id, f"backlog: {decision.reason}",
                         now)
                loads[decision.agent_id] = loads.get(decision.agent_id, 0) + 1
                last = decision.agent_id
                assigned += 1
        if assigned:
            log.info("backlog: assigned %d waiting mention(s)", assigned)
        return assigned

    def _anyone_free(self, away: Collection[str], loads: dict[str, int], now: datetime) -> bool:
        """Skip reading the backlog when no agent could take anything at all."""
        return any(
            a.id not in away and (a.shift is None or a.shift.covers(now))
            and loads.get(a.id, 0) < a.max_open
            for a in self.routing.agents
        )

    async def hand_off(self, agent_id: str, why: str, now: datetime, actor: str = "router",
                       session: Any = None) -> int:
        """With `routing.handoff: reassign`, route `agent_id`'s open mentions again (their
        owner is away or off shift, so never back to them); returns how many moved."""
        if self.routing.handoff != "reassign":
            return 0
        if session is None:
            async with self._lock, self.store.write() as own:
                return await self._hand_off(own, agent_id, why, now, actor)
        return await self._hand_off(session, agent_id, why, now, actor)

    async def _hand_off(self, session: Any, agent_id: str, why: str, now: datetime,
                        actor: str) -> int:
        held = await held_by(session, agent_id)
        if not held:
            return 0
        away = await away_agents(session) | {agent_id}
        loads = await open_counts(session)
        loads.pop(agent_id, None)
        last = await last_assigned(session)
        label = f"handoff: {agent_id} {why}"
        for mention, segment in held:
            decision = self.routing.decide(facts_of(mention, segment), loads, now, last, away)
            if decision.agent_id is None:
                route_to(session, mention, None,
                         f"{label}; nobody on shift ({decision.reason})", now, actor)
                continue
            route_to(session, mention, decision.agent_id, f"{label}; {decision.reason}",
                     now, actor)
            loads[decision.agent_id] = loads.get(decision.agent_id, 0) + 1
            last = decision.agent_id
        log.info("%s: %d open mention(s) routed again", label, len(held))
        return len(held)

    async def set_status(self, agent_id: str, status: str, actor: str, now: datetime
                         ) -> Agent:
        """An agent going away hands their work off in the same transaction; one coming
        back is new capacity, so the backlog drains right after."""
        async with self._lock, self.store.write() as session:
            agent = await set_agent_status(session, agent_id, status)
            if status == "away":
                await self.hand_off(agent_id, "away", now, actor, session=session)
        if status == "available":
            await self.drain(now)
        return agent

    def on_shift(self, now: datetime) -> set[str]:
        return {a.id for a in self.routing.agents if a.shift is None or a.shift.covers(now)}

    async def shift_tick(self, now: datetime) -> int:
        """At a shift boundary: hand off the agents whose shift ended since the last tick,
        then drain for those whose shift started. The first tick only takes note."""
        current = self.on_shift(now)
        ended = (self._on_shift if self._on_shift is not None else current) - current
        self._on_shift = current
        for agent_id in sorted(ended):
            await self.hand_off(agent_id, "shift ended", now)
        return await self.drain(now)

    def next_shift_change(self, now: datetime) -> datetime | None:
        changes = [a.shift.next_change(now) for a in self.routing.agents if a.shift]
        return min(changes) if changes else None

    # -- scheduling (background only) --------------------------------------------------

    def start(self, jobs: Any) -> None:
        """Drain now (config may have raised max_open or added agents), every 30 s as a
        safety sweep, on every wake, and at every shift boundary."""
        self._jobs = jobs
        self._on_shift = self.on_shift(self.clock.now())
        jobs.every(SWEEP_SECONDS, self._run, job_id="backlog-sweep",
                   first_run=datetime.now(UTC))
        self._arm()

    def wake(self) -> None:
        """Capacity may have appeared: drain within moments, not at the next sweep."""
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
                await self.drain(self.clock.now())
        except Exception:
            log.exception("backlog drain failed; the next sweep retries")
        finally:
            self._running = False

    async def _boundary(self) -> None:
        try:
            await self.shift_tick(self.clock.now())
        except Exception:
            log.exception("shift change routing failed; the next sweep drains")
        finally:
            self._arm()

    def _arm(self) -> None:
        change = self.next_shift_change(self.clock.now())
        if change is not None and self._jobs is not None:
            self._jobs.at(change + BOUNDARY_SLACK, self._boundary, job_id="backlog-shift")


BACKLOG = web.AppKey("backlog", Backlog)
