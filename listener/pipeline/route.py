"""Routing stage: config agents and rules, evaluated by the pure `listener.router`."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from listener.pipeline.enrich import at_least
from listener.router import (
    AgentProfile,
    Decision,
    EligibleAgents,
    RoutingFacts,
    RoutingRule,
    choose_agent,
)
from listener.shifts import Shift
from sla.policy import MentionFacts


def profile_from_config(agent: Any, tz: ZoneInfo) -> AgentProfile:
    return AgentProfile(
        id=agent.id,
        name=agent.name or agent.id,
        channels=frozenset(agent.channels),
        languages=frozenset(agent.languages),
        max_open=agent.max_open,
        shift=Shift.parse(agent.shift, tz) if agent.shift else None,
        teams=frozenset(agent.teams),
    )


def rule_from_config(rule: Any) -> RoutingRule:
    match = {key: list(values) for key, values in rule.match.model_dump().items() if values}
    return RoutingRule(match=match, agents=tuple(rule.agents))


class Routing:
    def __init__(self, agents: list[AgentProfile], rules: list[RoutingRule], strategy: str,
                 handoff: str = "reassign", affinity_window: timedelta = timedelta(hours=24),
                 segment_priority: Mapping[str, str] | None = None):
        self.agents = agents
        self.rules = rules
        self.strategy = strategy
        self.handoff = handoff
        self.affinity_window = affinity_window
        self.segment_priority = dict(segment_priority or {})
        self._profiles: tuple[list[AgentProfile], frozenset[str], list[AgentProfile]] | None \
            = None
        self._eligible: EligibleAgents | None = None  # kept while agents, away and now are

    @classmethod
    def from_config(cls, config: Any) -> Routing:
        tz = config.tz
        return cls(
            [profile_from_config(a, tz) for a in config.agents],
            [rule_from_config(r) for r in config.routing.rules],
            config.routing.strategy,
            config.routing.handoff,
            config.routing.affinity_window,
            config.customers.segment_priority,
        )

    def priority_for(self, priority: str, segment: str | None) -> str:
        """The enricher's priority raised to the customer segment's floor
        (`customers.segment_priority`): a VIP's plain question is queued as `high`.
        Decided before the deadline and the agent, so policies and rules match on it."""
        return at_least(priority, self.segment_priority.get(segment or ""))

    def profiles(self, away: Collection[str] = ()) -> list[AgentProfile]:
        """The configured agents, with `available` taken from their stored status; kept
        while the away set is the same (an ingest asks once per mention)."""
        known = self._profiles
        if known is not None and known[0] is self.agents and known[1] == away:
            return known[2]  # a set equals the frozenset kept: none built per mention
        away = frozenset(away)
        if known is None or known[0] is not self.agents or known[1] != away:
            known = self._profiles = (self.agents, away, [
                replace(a, available=False) if a.id in away else a for a in self.agents])
        return known[2]

    def decide(
        self,
        facts: MentionFacts,
        loads: Mapping[str, int],
        now: datetime,
        last_assigned: str | None,
        away: Collection[str] = (),
        preferred: str | None = None,
    ) -> Decision:
        key = (facts.channel, facts.lang, facts.source, facts.segment, facts.priority)
        agents = self.profiles(away)
        fast = self._eligible
        if (fast is None or fast.agents is not agents or fast.rules is not self.rules
                or fast.strategy != self.strategy or fast.now != now):
            fast = self._eligible = EligibleAgents(agents, self.rules, self.strategy, now)
        decision = fast.decide(key, loads, last_assigned, preferred)
        if decision is not None:
            return decision
        # Nobody who could take it has room: `choose_agent` explains why (or falls back
        # beyond a rule), which costs more than routing. Its answer then depends on the
        # agents' loads, not on `preferred` (affinity needs room too): once a team is
        # full, a whole batch asks the same question, answered once.
        situation = (key, tuple([loads.get(a.id, 0) for a in agents]), last_assigned)
        decision = fast.explained.get(situation)
        if decision is None:
            decision = fast.explained[situation] = choose_agent(
                RoutingFacts(*key), agents, loads, now, self.strategy, self.rules,
                last_assigned, preferred)
        return decision
