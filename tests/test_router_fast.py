"""`Routing.decide`'s per-batch fast path (`EligibleAgents`) against `choose_agent`: the
same agent with the same reason, or the same error, for any agents, rules and loads."""

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from listener.pipeline.route import Routing
from listener.router import AgentProfile, RoutingFacts, RoutingRule, choose_agent
from listener.shifts import Shift
from sla.policy import MentionFacts

IST = ZoneInfo("Europe/Istanbul")
IDS = ("ayse", "can", "john", "mia")
CHANNELS = ("twitter", "email", "web")
LANGS = ("tr", "en")
SHIFTS = (None, Shift.parse("mon-fri 09:00-18:00", IST), Shift.parse("sat-sun 22:00-06:00", IST))
NOWS = (datetime(2026, 3, 2, 10, 0, tzinfo=IST), datetime(2026, 3, 8, 23, 0, tzinfo=IST))

agents = st.lists(st.builds(
    AgentProfile,
    id=st.sampled_from(IDS),  # repeated ids too: the first one counts
    name=st.just("x"),
    channels=st.frozensets(st.sampled_from(CHANNELS)),
    languages=st.frozensets(st.sampled_from(LANGS)),
    max_open=st.integers(0, 3),
    shift=st.sampled_from(SHIFTS),
    teams=st.frozensets(st.sampled_from(("vip", "tr"))),
), max_size=5)
rules = st.lists(st.builds(
    RoutingRule,
    match=st.dictionaries(st.sampled_from(("channel", "languages", "segment")),
                          st.lists(st.sampled_from((*CHANNELS, *LANGS, "vip")), min_size=1),
                          max_size=2),
    agents=st.lists(st.sampled_from((*IDS, "vip", "tr")), max_size=3).map(tuple),
), max_size=3)
facts = st.builds(MentionFacts, channel=st.sampled_from(CHANNELS), source=st.just("s"),
                  lang=st.sampled_from((None, *LANGS)), segment=st.sampled_from((None, "vip")),
                  priority=st.just("normal"))


@settings(max_examples=400, deadline=None)
@given(agents, rules, st.sampled_from(("least_loaded", "round_robin", "random")),
       st.sampled_from(NOWS), st.frozensets(st.sampled_from(IDS)),
       st.lists(st.tuples(facts, st.dictionaries(st.sampled_from(IDS), st.integers(0, 4)),
                          st.sampled_from((None, *IDS)), st.sampled_from((None, *IDS))),
                min_size=1, max_size=6))
def test_decide_is_choose_agent(agents, rules, strategy, now, away, mentions):
    routing = Routing(agents, rules, strategy)
    # One batch: the plans are reused; each mention comes twice, the second time as the
    # answer of a batch where nobody had room, which is worked out once.
    for facts, loads, last, preferred in mentions * 2:
        slow = RoutingFacts(facts.channel, facts.lang, facts.source, facts.segment,
                            facts.priority)
        try:
            expected = choose_agent(slow, routing.profiles(away), loads, now, strategy, rules,
                                    last, preferred)
        except ValueError as error:
            expected = error
        try:
            got = routing.decide(facts, loads, now, last, away, preferred)
        except ValueError as error:
            got = error
        if isinstance(expected, ValueError):
            assert str(got) == str(expected)
        else:
            assert got == expected


def test_a_full_team_is_explained_for_the_loads_of_the_moment() -> None:
    """Nobody the rule names has room: the answer (fall back to someone else, or nobody)
    follows the other agents' loads as they change within one batch."""
    team = [AgentProfile(id=name, name=name, channels=frozenset({"twitter"}),
                         languages=frozenset({"tr"}), max_open=1, shift=None)
            for name in ("ayse", "can")]
    rules = [RoutingRule(match={"channel": "twitter"}, agents=("ayse",))]
    routing = Routing(team, rules, "least_loaded")
    now = NOWS[0]
    mention = MentionFacts(channel="twitter", source="s", lang="tr", segment=None,
                           priority="normal")
    loads = {"ayse": 1, "can": 0}
    first = routing.decide(mention, loads, now, None)
    assert first.agent_id == "can" and "fell back" in first.reason
    loads["can"] = 1  # the same dict, as a batch updates it
    second = routing.decide(mention, loads, now, None)
    assert second.agent_id is None
    slow = RoutingFacts("twitter", "tr", "s", None, "normal")
    assert second == choose_agent(slow, team, loads, now, "least_loaded", rules)
