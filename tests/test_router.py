from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listener.router import (
    AgentProfile,
    Decision,
    RoutingFacts,
    RoutingRule,
    choose_agent,
    eligible,
    why_not_eligible,
)
from listener.shifts import Shift

IST = ZoneInfo("Europe/Istanbul")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=IST)
SUNDAY_10 = datetime(2026, 3, 8, 10, 0, tzinfo=IST)
OFFICE = Shift.parse("mon-fri 09:00-18:00", IST)


def agent(
    id: str,
    channels: str = "twitter mastodon",
    languages: str = "",
    max_open: int = 5,
    shift: Shift | None = None,
    teams: str = "",
) -> AgentProfile:
    return AgentProfile(
        id=id,
        name=id.title(),
        channels=frozenset(channels.split()),
        languages=frozenset(languages.split()),
        max_open=max_open,
        shift=shift,
        teams=frozenset(teams.split()),
    )


def facts(channel: str = "twitter", lang: str | None = "tr", **more: str) -> RoutingFacts:
    return RoutingFacts(channel=channel, lang=lang, source="x-brand", **more)


AYSE = agent("ayse", languages="tr en", max_open=25, shift=OFFICE, teams="lead-team")
JOHN = agent("john", channels="twitter reddit", languages="en")
CAN = agent("can", channels="mastodon", languages="tr", shift=OFFICE)
ANY = agent("any", channels="twitter", languages="")


@pytest.mark.parametrize(
    ("who", "mention", "open_count", "now", "why"),
    [
        (AYSE, facts(), 0, MONDAY_10, None),
        (AYSE, facts(channel="reddit"), 0, MONDAY_10, "no reddit"),
        (JOHN, facts(lang="tr"), 0, MONDAY_10, "no tr"),
        (JOHN, facts(lang=None), 0, MONDAY_10, None),
        (ANY, facts(lang="de"), 0, MONDAY_10, None),
        (AYSE, facts(), 0, SUNDAY_10, "off shift"),
        (JOHN, facts(lang="en"), 0, SUNDAY_10, None),
        (AYSE, facts(), 24, MONDAY_10, None),
        (AYSE, facts(), 25, MONDAY_10, "at capacity 25/25"),
        (agent("zero", max_open=0), facts(), 0, MONDAY_10, "at capacity 0/0"),
        (CAN, facts(channel="twitter"), 0, SUNDAY_10, "no twitter"),  # first reason wins
    ],
)
def test_eligibility(
    who: AgentProfile, mention: RoutingFacts, open_count: int, now: datetime, why: str | None
) -> None:
    assert why_not_eligible(who, mention, open_count, now) == why
    assert eligible(who, mention, open_count, now) is (why is None)


def test_least_loaded_picks_fewest_open() -> None:
    team = [agent("a"), agent("b"), agent("c")]
    decision = choose_agent(facts(), team, {"a": 3, "b": 2, "c": 4}, MONDAY_10)
    assert decision == Decision("b", "least loaded of 3 eligible (b: 2 open)")


def test_least_loaded_ties_go_to_config_order() -> None:
    team = [agent("a"), agent("b"), agent("c")]
    assert choose_agent(facts(), team, {"a": 2, "b": 1, "c": 1}, MONDAY_10).agent_id == "b"
    assert choose_agent(facts(), team, {}, MONDAY_10).agent_id == "a"


def test_least_loaded_ignores_ineligible_agents_even_if_idle() -> None:
    team = [agent("a", channels="reddit"), agent("b", max_open=1), agent("c")]
    decision = choose_agent(facts(), team, {"b": 1, "c": 4}, MONDAY_10)
    assert decision == Decision("c", "least loaded of 1 eligible (c: 4 open)")


@pytest.mark.parametrize(
    ("last", "loads", "chosen"),
    [
        (None, {}, "a"),
        ("ghost", {}, "a"),
        ("a", {}, "b"),
        ("b", {}, "c"),
        ("c", {}, "a"),  # wraps
        ("a", {"b": 5}, "c"),  # skips b at capacity
        ("b", {"c": 5, "a": 5}, "b"),  # only the last assignee is left
        ("c", {"a": 5}, "b"),
    ],
)
def test_round_robin(last: str | None, loads: dict[str, int], chosen: str) -> None:
    team = [agent("a"), agent("b"), agent("c"), agent("d", channels="reddit")]
    decision = choose_agent(
        facts(), team, loads, MONDAY_10, strategy="round_robin", last_assigned=last
    )
    assert decision.agent_id == chosen
    assert decision.reason.startswith("round robin")


def test_round_robin_reason() -> None:
    team = [agent("a"), agent("b")]
    got = choose_agent(facts(), team, {}, MONDAY_10, strategy="round_robin", last_assigned="a")
    assert got.reason == "round robin after a among 2 eligible (b)"


LEADS = RoutingRule(match={"segment": "vip"}, agents=("lead-team",))


def test_rule_routes_to_team_members_only() -> None:
    team = [agent("a", teams="lead-team"), agent("b"), agent("c", teams="lead-team night")]
    decision = choose_agent(
        facts(segment="vip"), team, {"a": 3, "b": 0, "c": 2}, MONDAY_10, rules=[LEADS]
    )
    assert decision == Decision(
        "c", "rule 1 (segment=vip) → lead-team: least loaded of 2 eligible (c: 2 open)"
    )


def test_rule_may_name_agent_ids_and_list_values() -> None:
    rule = RoutingRule(match={"channels": ["reddit", "twitter"], "lang": "tr"}, agents=("b",))
    team = [agent("a"), agent("b")]
    assert choose_agent(facts(), team, {"b": 4}, MONDAY_10, rules=[rule]).agent_id == "b"
    assert choose_agent(facts(lang="en"), team, {"b": 4}, MONDAY_10, rules=[rule]).agent_id == "a"


def test_first_matching_rule_wins() -> None:
    rules = [
        RoutingRule(match={"priority": "high"}, agents=("b",)),
        RoutingRule(match={"sources": ["x-brand"]}, agents=("c",)),
        RoutingRule(match={}, agents=("a",)),
    ]
    team = [agent("a"), agent("b"), agent("c")]
    assert choose_agent(facts(priority="high"), team, {}, MONDAY_10, rules=rules).agent_id == "b"
    decision = choose_agent(facts(priority="low"), team, {}, MONDAY_10, rules=rules)
    assert decision.agent_id == "c"
    assert decision.reason.startswith("rule 2 (sources=x-brand) → c:")


def test_unmatched_rules_use_strategy_over_all() -> None:
    team = [agent("a", teams="lead-team"), agent("b")]
    decision = choose_agent(facts(), team, {"a": 1}, MONDAY_10, rules=[LEADS])
    assert decision == Decision("b", "least loaded of 2 eligible (b: 0 open)")


def test_rule_without_eligible_members_falls_back_to_everyone() -> None:
    team = [agent("a", teams="lead-team", max_open=1), agent("b"), agent("c", shift=OFFICE)]
    decision = choose_agent(facts(segment="vip"), team, {"a": 1, "b": 3}, SUNDAY_10, rules=[LEADS])
    assert decision.agent_id == "b"
    assert decision.reason == (
        "rule 1 (segment=vip) → lead-team: nobody eligible there (at capacity 1/1: a); "
        "fell back to all agents: least loaded of 1 eligible (b: 3 open)"
    )


def test_rule_naming_an_unknown_team_falls_back() -> None:
    rule = RoutingRule(match={"segment": "vip"}, agents=("no-such-team",))
    decision = choose_agent(facts(segment="vip"), [agent("a")], {}, MONDAY_10, rules=[rule])
    assert decision.agent_id == "a"
    assert "nobody eligible there (no such agents); fell back" in decision.reason


def test_nobody_qualifies_explains_why() -> None:
    decision = choose_agent(facts(lang="tr"), [AYSE, JOHN, CAN], {"ayse": 1}, SUNDAY_10)
    assert decision == Decision(
        None,
        "no agent covers channel twitter in tr on shift with capacity "
        "(off shift: ayse; no tr: john; no twitter: can)",
    )


def test_nobody_qualifies_after_fallback_or_without_agents() -> None:
    team = [agent("a", teams="lead-team", channels="reddit")]
    decision = choose_agent(facts(segment="vip", lang=None), team, {}, MONDAY_10, rules=[LEADS])
    assert decision.agent_id is None
    assert decision.reason.endswith(
        "fell back to all agents: no agent covers channel twitter on shift with capacity "
        "(no twitter: a)"
    )
    empty = choose_agent(facts(), [], {}, MONDAY_10)
    assert empty == Decision(
        None, "no agent covers channel twitter in tr on shift with capacity (no agents)"
    )


def test_bad_strategy_and_bad_rule_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown routing strategy 'fastest'"):
        choose_agent(facts(), [AYSE], {}, MONDAY_10, strategy="fastest")
    with pytest.raises(ValueError, match="unknown routing match key"):
        RoutingRule(match={"segmnt": "vip"}, agents=("lead-team",))
    with pytest.raises(ValueError, match="string or list of strings"):
        RoutingRule(match={"segment": 3}, agents=("lead-team",))


# --- properties -------------------------------------------------------------------------

CHANNELS = ("twitter", "reddit", "mastodon")
SHIFTS = (
    None,
    OFFICE,
    Shift.parse("sat-sun 22:00-06:00", IST),
    Shift.parse("daily", ZoneInfo("Europe/Berlin")),
    Shift.parse("mon,wed 00:00-12:00; fri 20:00-04:00", ZoneInfo("America/New_York")),
)
TZS = (IST, ZoneInfo("UTC"), ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"))

agent_profiles = st.builds(
    AgentProfile,
    id=st.just(""),
    name=st.just(""),
    channels=st.frozensets(st.sampled_from(CHANNELS)),
    languages=st.frozensets(st.sampled_from(("tr", "en"))),
    max_open=st.integers(0, 3),
    shift=st.sampled_from(SHIFTS),
    teams=st.frozensets(st.sampled_from(("lead", "night"))),
)
agent_lists = st.lists(agent_profiles, max_size=6).map(
    lambda agents: [
        AgentProfile(**{**a.__dict__, "id": f"agent{i}", "name": f"Agent {i}"})
        for i, a in enumerate(agents)
    ]
)
mentions = st.builds(
    RoutingFacts,
    channel=st.sampled_from(CHANNELS),
    lang=st.sampled_from((None, "tr", "en", "de")),
    source=st.sampled_from(("x-brand", "forum")),
    segment=st.sampled_from((None, "vip")),
    priority=st.sampled_from((None, "high")),
)
rule_lists = st.lists(
    st.builds(
        RoutingRule,
        match=st.sampled_from(
            ({}, {"segment": "vip"}, {"channels": ["reddit", "mastodon"]}, {"lang": "tr"})
        ),
        agents=st.lists(st.sampled_from(("lead", "night", "agent0", "agent3")), max_size=2).map(
            tuple
        ),
    ),
    max_size=3,
)
moments = st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.sampled_from(TZS))
loads = st.dictionaries(st.sampled_from([f"agent{i}" for i in range(6)]), st.integers(0, 4))


def really_eligible(a: AgentProfile, f: RoutingFacts, load: dict[str, int], now: datetime) -> bool:
    """An oracle written apart from the router, straight from the spec."""
    return (
        f.channel in a.channels
        and (f.lang is None or not a.languages or f.lang in a.languages)
        and (a.shift is None or a.shift.covers(now))
        and load.get(a.id, 0) < a.max_open
    )


@given(
    agents=agent_lists,
    mention=mentions,
    load=loads,
    now=moments,
    strategy=st.sampled_from(("least_loaded", "round_robin")),
    rules=rule_lists,
    last=st.sampled_from((None, "agent0", "agent2", "agent5", "ghost")),
)
def test_chosen_agent_is_always_eligible_and_someone_is_chosen_when_possible(
    agents: list[AgentProfile],
    mention: RoutingFacts,
    load: dict[str, int],
    now: datetime,
    strategy: str,
    rules: list[RoutingRule],
    last: str | None,
) -> None:
    decision = choose_agent(mention, agents, load, now, strategy, rules, last)
    possible = [a.id for a in agents if really_eligible(a, mention, load, now)]
    assert decision.reason
    if possible:
        assert decision.agent_id in possible
    else:
        assert decision.agent_id is None


@given(agents=agent_lists, mention=mentions, load=loads, now=moments)
def test_least_loaded_takes_the_first_of_the_least_loaded(
    agents: list[AgentProfile], mention: RoutingFacts, load: dict[str, int], now: datetime
) -> None:
    possible = [a for a in agents if really_eligible(a, mention, load, now)]
    decision = choose_agent(mention, agents, load, now)
    if possible:
        fewest = min(load.get(a.id, 0) for a in possible)
        first = next(a.id for a in possible if load.get(a.id, 0) == fewest)
        assert decision.agent_id == first


@given(
    agents=agent_lists,
    mention=mentions,
    load=loads,
    now=moments,
    last=st.sampled_from((None, "agent0", "agent2", "agent5", "ghost")),
)
def test_round_robin_takes_the_next_eligible_after_the_last(
    agents: list[AgentProfile],
    mention: RoutingFacts,
    load: dict[str, int],
    now: datetime,
    last: str | None,
) -> None:
    ids = [a.id for a in agents]
    start = ids.index(last) + 1 if last in ids else 0
    order = agents[start:] + agents[:start]
    expected = next((a.id for a in order if really_eligible(a, mention, load, now)), None)
    decision = choose_agent(mention, agents, load, now, "round_robin", last_assigned=last)
    assert decision.agent_id == expected
