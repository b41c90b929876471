"""Pick the agent for a mention: pure logic, `now` and open counts are passed in.

Rules narrow the candidates (first matching rule wins); a strategy then picks
among the eligible candidates. Every `Decision` carries a human-readable reason
so the dashboard can show why a mention went where it went, or why it is
unassigned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from listener.shifts import Shift

STRATEGIES = ("least_loaded", "round_robin")

# Rule match keys, singular and plural, mapped to the RoutingFacts field they test.
MATCH_KEYS = {
    "channel": "channel",
    "channels": "channel",
    "lang": "lang",
    "languages": "lang",
    "source": "source",
    "sources": "source",
    "segment": "segment",
    "segments": "segment",
    "priority": "priority",
    "priorities": "priority",
}


@dataclass(frozen=True)
class AgentProfile:
    id: str
    name: str
    channels: frozenset[str]
    languages: frozenset[str]  # empty = any language
    max_open: int
    shift: Shift | None  # None = always on shift
    teams: frozenset[str] = frozenset()
    available: bool = True  # False = the agent set themselves away


@dataclass(frozen=True)
class RoutingFacts:
    channel: str
    lang: str | None
    source: str
    segment: str | None = None
    priority: str | None = None


@dataclass(frozen=True)
class RoutingRule:
    """`match` keys are ANDed; a list value matches any of its items.

    Unknown keys raise at construction, so a typo in the config cannot silently
    turn a rule into a catch-all. An empty `match` does match everything.
    """

    match: Mapping[str, object]
    agents: tuple[str, ...]  # agent ids or team names

    def __post_init__(self) -> None:
        unknown = sorted(set(self.match) - set(MATCH_KEYS))
        if unknown:
            raise ValueError(f"unknown routing match key(s) {unknown}; use {sorted(MATCH_KEYS)}")
        for key, value in self.match.items():
            if not isinstance(value, str) and not (
                isinstance(value, list | tuple | set | frozenset)
                and all(isinstance(v, str) for v in value)
            ):
                raise ValueError(f"routing match {key!r} must be a string or list of strings")
        object.__setattr__(self, "agents", tuple(self.agents))

    def matches(self, facts: RoutingFacts) -> bool:
        return all(
            getattr(facts, MATCH_KEYS[key]) in _as_set(value) for key, value in self.match.items()
        )

    def describe(self) -> str:
        conditions = ", ".join(f"{k}={'|'.join(sorted(_as_set(v)))}" for k, v in self.match.items())
        return f"({conditions or 'any'}) → {', '.join(self.agents)}"

    def selects(self, agent: AgentProfile) -> bool:
        return agent.id in self.agents or not agent.teams.isdisjoint(self.agents)


@dataclass(frozen=True)
class Decision:
    agent_id: str | None
    reason: str


def why_not_eligible(
    agent: AgentProfile, facts: RoutingFacts, open_count: int, now: datetime
) -> str | None:
    """The first reason `agent` cannot take this mention, or None if it can."""
    if not agent.available:
        return "away"
    if facts.channel not in agent.channels:
        return f"no {facts.channel}"
    if facts.lang is not None and agent.languages and facts.lang not in agent.languages:
        return f"no {facts.lang}"
    if agent.shift is not None and not agent.shift.covers(now):
        return "off shift"
    if open_count >= agent.max_open:
        return f"at capacity {open_count}/{agent.max_open}"
    return None


def eligible(agent: AgentProfile, facts: RoutingFacts, open_count: int, now: datetime) -> bool:
    return why_not_eligible(agent, facts, open_count, now) is None


def choose_agent(
    facts: RoutingFacts,
    agents: Sequence[AgentProfile],
    open_counts: Mapping[str, int],
    now: datetime,
    strategy: str = "least_loaded",
    rules: Sequence[RoutingRule] = (),
    last_assigned: str | None = None,
    preferred: str | None = None,
) -> Decision:
    """Route to `preferred` (the agent who has, or last had, this customer's conversation)
    when eligible, else by the first matching rule's agents, falling back to everyone.

    Affinity comes first because a customer answered by one person is better served
    than one bounced between agents; it never overrides eligibility. The fallback
    exists because an unassigned VIP mention is worse than one answered by a non-lead
    agent; the reason records that it happened.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {strategy!r}; use one of {STRATEGIES}")
    pick = _Picker(facts, agents, open_counts, now, strategy, last_assigned)
    known = next((a for a in agents if a.id == preferred), None)
    if known is not None and pick.why_not(known) is None:
        return Decision(known.id, f"affinity: {known.id} has this customer")
    for number, rule in enumerate(rules, start=1):
        if not rule.matches(facts):
            continue
        label = f"rule {number} {rule.describe()}"
        members = [a for a in agents if rule.selects(a)]
        chosen = pick(members)
        if chosen.agent_id is not None:
            return Decision(chosen.agent_id, f"{label}: {chosen.reason}")
        fallback = pick(agents)
        return Decision(
            fallback.agent_id,
            f"{label}: nobody eligible there ({pick.blockers(members) or 'no such agents'}); "
            f"fell back to all agents: {fallback.reason}",
        )
    return pick(agents)


@dataclass(frozen=True)
class _Picker:
    """Applies the strategy to a candidate list; bundles the inputs that never change."""

    facts: RoutingFacts
    agents: Sequence[AgentProfile]
    open_counts: Mapping[str, int]
    now: datetime
    strategy: str
    last_assigned: str | None

    def __call__(self, candidates: Sequence[AgentProfile]) -> Decision:
        ok = [a for a in candidates if self.why_not(a) is None]
        if not ok:
            return Decision(None, self._nobody(candidates))
        if self.strategy == "round_robin":
            return self._round_robin(ok)
        best = min(ok, key=self._load)  # min() keeps the first on ties
        return Decision(
            best.id, f"least loaded of {len(ok)} eligible ({best.id}: {self._load(best)} open)"
        )

    def _round_robin(self, ok: list[AgentProfile]) -> Decision:
        """Next eligible agent after `last_assigned` in the full config order.

        Using the full order (not the candidate list) keeps the rotation fair when
        a rule narrows the set to a team that the last assignee is not part of.
        """
        ids = [a.id for a in self.agents]
        known = self.last_assigned in ids
        start = ids.index(self.last_assigned) + 1 if known else 0
        ok_ids = {a.id for a in ok}
        chosen = next(i for i in ids[start:] + ids[:start] if i in ok_ids)
        after = f"after {self.last_assigned}" if known else "from the first"
        return Decision(chosen, f"round robin {after} among {len(ok)} eligible ({chosen})")

    def _nobody(self, candidates: Sequence[AgentProfile]) -> str:
        lang = f" in {self.facts.lang}" if self.facts.lang else ""
        what = f"no agent covers channel {self.facts.channel}{lang} on shift with capacity"
        return f"{what} ({self.blockers(candidates)})" if candidates else f"{what} (no agents)"

    def blockers(self, candidates: Sequence[AgentProfile]) -> str:
        """Group agents by why they can't take it: "off shift: ayse, can; no tr: john"."""
        by_reason: dict[str, list[str]] = {}
        for agent in candidates:
            by_reason.setdefault(self.why_not(agent) or "eligible", []).append(agent.id)
        return "; ".join(f"{why}: {', '.join(ids)}" for why, ids in by_reason.items())

    def _load(self, agent: AgentProfile) -> int:
        return self.open_counts.get(agent.id, 0)

    def why_not(self, agent: AgentProfile) -> str | None:
        return why_not_eligible(agent, self.facts, self._load(agent), self.now)


def _as_set(value: object) -> frozenset[str]:
    return frozenset([value]) if isinstance(value, str) else frozenset(cast(Iterable[str], value))
