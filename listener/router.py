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


FactsKey = tuple[str, str | None, str, str | None, str | None]
"""`RoutingFacts`' fields, in order, as a plain tuple."""


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
    return _why_not_now(agent, facts, now) or (
        f"at capacity {open_count}/{agent.max_open}" if open_count >= agent.max_open
        else None)


def _why_not_now(agent: AgentProfile, facts: RoutingFacts, now: datetime) -> str | None:
    """The reasons that do not depend on the agent's open count (checked first)."""
    if not agent.available:
        return "away"
    if facts.channel not in agent.channels:
        return f"no {facts.channel}"
    if facts.lang is not None and agent.languages and facts.lang not in agent.languages:
        return f"no {facts.lang}"
    if agent.shift is not None and not agent.shift.covers(now):
        return "off shift"
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
    known = None if preferred is None else next((a for a in agents if a.id == preferred), None)
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
        return _pick_eligible(ok, self.strategy, self.agents, self.open_counts,
                              self.last_assigned)

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


def _pick_eligible(ok: Sequence[AgentProfile], strategy: str, agents: Sequence[AgentProfile],
                   open_counts: Mapping[str, int], last_assigned: str | None) -> Decision:
    """The strategy's pick among `ok` (not empty, every agent eligible)."""
    if strategy == "round_robin":
        return _round_robin(ok, agents, last_assigned)
    best = min(ok, key=lambda a: open_counts.get(a.id, 0))  # min() keeps the first on ties
    return Decision(
        best.id, f"least loaded of {len(ok)} eligible ({best.id}: {open_counts.get(best.id, 0)} "
        "open)"
    )


def _round_robin(ok: Sequence[AgentProfile], agents: Sequence[AgentProfile],
                 last_assigned: str | None) -> Decision:
    """Next eligible agent after `last_assigned` in the full config order.

    Using the full order (not the candidate list) keeps the rotation fair when
    a rule narrows the set to a team that the last assignee is not part of.
    """
    ids = [a.id for a in agents]
    known = last_assigned in ids
    start = ids.index(last_assigned) + 1 if known else 0
    ok_ids = {a.id for a in ok}
    chosen = next(i for i in ids[start:] + ids[:start] if i in ok_ids)
    after = f"after {last_assigned}" if known else "from the first"
    return Decision(chosen, f"round robin {after} among {len(ok)} eligible ({chosen})")


class EligibleAgents:
    """`choose_agent` for one agent list, rule list, strategy and `now` (one ingest
    batch), with what does not depend on open counts worked out once per distinct
    (channel, lang, source, segment, priority): the matching rule and which agents could
    take the mention but for their capacity. `decide` returns None where `choose_agent`
    would explain that nobody was eligible (or fall back from a rule), left to it. The
    facts come as `FactsKey`, so a hit builds no `RoutingFacts`."""

    def __init__(self, agents: Sequence[AgentProfile], rules: Sequence[RoutingRule],
                 strategy: str, now: datetime):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown routing strategy {strategy!r}; use one of {STRATEGIES}")
        self.agents, self.rules, self.strategy, self.now = agents, rules, strategy, now
        self._plans: dict[FactsKey, tuple[dict[str, AgentProfile | None], str | None,
                                              list[AgentProfile]]] = {}
        self.explained: dict[tuple[FactsKey, tuple[int, ...], str | None], Decision] = {}
        """`choose_agent`'s answers where `decide` has none, by the situation (see
        `Routing.decide`)."""

    def _plan(self, facts: RoutingFacts) -> tuple[dict[str, AgentProfile | None],
                                                   str | None, list[AgentProfile]]:
        """(agent id → the first agent of that id, None when it could not take it at any
        load), the matching rule's label (None: no rule matched) and the candidates that
        could take it at some load, in config order."""
        by_id: dict[str, AgentProfile | None] = {}
        could = {}
        for agent in self.agents:
            ok = _why_not_now(agent, facts, self.now) is None
            could[id(agent)] = ok
            by_id.setdefault(agent.id, agent if ok else None)
        label, candidates = None, self.agents
        for number, rule in enumerate(self.rules, start=1):
            if rule.matches(facts):
                label = f"rule {number} {rule.describe()}"
                candidates = [a for a in self.agents if rule.selects(a)]
                break
        return by_id, label, [a for a in candidates if could[id(a)]]

    def decide(self, facts: FactsKey, open_counts: Mapping[str, int],
               last_assigned: str | None = None, preferred: str | None = None
               ) -> Decision | None:
        plan = self._plans.get(facts)
        if plan is None:
            plan = self._plans[facts] = self._plan(RoutingFacts(*facts))
        by_id, label, could = plan
        if preferred is not None:
            known = by_id.get(preferred)
            if known is not None and open_counts.get(preferred, 0) < known.max_open:
                return Decision(preferred, f"affinity: {preferred} has this customer")
        ok = [a for a in could if open_counts.get(a.id, 0) < a.max_open]
        if not ok:
            return None
        chosen = _pick_eligible(ok, self.strategy, self.agents, open_counts, last_assigned)
        return chosen if label is None else Decision(chosen.agent_id,
                                                     f"{label}: {chosen.reason}")


def _as_set(value: object) -> frozenset[str]:
    return frozenset([value]) if isinstance(value, str) else frozenset(cast(Iterable[str], value))
