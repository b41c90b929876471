"""Routing beyond a single decision: away agents, affinity, shift boundaries, and the
invariant that a run of assignments (ingest or backlog drain) never breaks eligibility."""

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listener.backlog import conversation_owner
from listener.models import Mention
from listener.router import AgentProfile, RoutingRule, choose_agent
from listener.shifts import Shift
from listener.store.routing import ConversationOwner
from tests.test_router import (
    AYSE,
    IST,
    JOHN,
    MONDAY_10,
    SUNDAY_10,
    agent,
    agent_lists,
    facts,
    mentions,
    moments,
    really_eligible,
    rule_lists,
)

BERLIN = ZoneInfo("Europe/Berlin")
AWAY_AYSE = replace(AYSE, available=False)
LEADS = RoutingRule(match={"segment": "vip"}, agents=("lead-team",))


@pytest.mark.parametrize(
    ("name", "agents", "loads", "now", "mention", "preferred", "rules", "chosen", "reason"),
    [
        ("nobody available", [AYSE], {}, SUNDAY_10, facts(), None, [], None,
         "no agent covers channel twitter in tr on shift with capacity (off shift: ayse)"),
        ("away agents are skipped", [AWAY_AYSE, JOHN], {}, MONDAY_10, facts(lang="en"), None,
         [], "john", "least loaded of 1 eligible (john: 0 open)"),
        ("away alone means nobody", [AWAY_AYSE], {}, MONDAY_10, facts(), None, [], None,
         "no agent covers channel twitter in tr on shift with capacity (away: ayse)"),
        ("capacity full", [AYSE], {"ayse": 25}, MONDAY_10, facts(), None, [], None,
         "no agent covers channel twitter in tr on shift with capacity "
         "(at capacity 25/25: ayse)"),
        ("capacity freed", [AYSE], {"ayse": 24}, MONDAY_10, facts(), None, [], "ayse",
         "least loaded of 1 eligible (ayse: 24 open)"),
        ("VIP rule", [JOHN, AYSE], {"ayse": 9}, MONDAY_10, facts(lang="en", segment="vip"),
         None, [LEADS], "ayse",
         "rule 1 (segment=vip) → lead-team: least loaded of 1 eligible (ayse: 9 open)"),
        ("affinity beats load", [JOHN, AYSE], {"ayse": 9}, MONDAY_10, facts(lang="en"),
         "ayse", [], "ayse", "affinity: ayse has this customer"),
        ("affinity beats a rule", [JOHN, AYSE], {}, MONDAY_10,
         facts(lang="en", segment="vip"), "john", [LEADS], "john",
         "affinity: john has this customer"),
        ("affinity never to an away agent", [AWAY_AYSE, JOHN], {}, MONDAY_10,
         facts(lang="en"), "ayse", [], "john", "least loaded of 1 eligible (john: 0 open)"),
        ("affinity never off shift", [AYSE, JOHN], {}, SUNDAY_10, facts(lang="en"), "ayse",
         [], "john", "least loaded of 1 eligible (john: 0 open)"),
        ("affinity never over capacity", [AYSE, JOHN], {"ayse": 25}, MONDAY_10,
         facts(lang="en"), "ayse", [], "john", "least loaded of 1 eligible (john: 0 open)"),
        ("affinity never without the language", [JOHN, AYSE], {}, MONDAY_10,
         facts(lang="tr"), "john", [], "ayse", "least loaded of 1 eligible (ayse: 0 open)"),
    ],
)
def test_routing_table(name, agents, loads, now, mention, preferred, rules, chosen, reason
                       ) -> None:
    decision = choose_agent(mention, agents, loads, now, rules=rules, preferred=preferred)
    assert (decision.agent_id, decision.reason) == (chosen, reason), name


@pytest.mark.parametrize(
    ("shift", "tz", "now", "expected"),
    [
        # Istanbul has no DST: an office day, and an overnight shift spilling into Saturday.
        ("mon-fri 09:00-18:00", IST, datetime(2026, 11, 23, 8, 0, tzinfo=IST),
         datetime(2026, 11, 23, 9, 0, tzinfo=IST)),
        ("mon-fri 09:00-18:00", IST, datetime(2026, 11, 23, 10, 0, tzinfo=IST),
         datetime(2026, 11, 23, 18, 0, tzinfo=IST)),
        ("mon-fri 09:00-18:00", IST, datetime(2026, 11, 27, 18, 0, tzinfo=IST),
         datetime(2026, 11, 30, 9, 0, tzinfo=IST)),
        ("fri 22:00-06:00", IST, datetime(2026, 11, 27, 23, 0, tzinfo=IST),
         datetime(2026, 11, 28, 6, 0, tzinfo=IST)),
        ("sun 22:00-06:00", IST, datetime(2026, 11, 29, 23, 0, tzinfo=IST),
         datetime(2026, 11, 30, 6, 0, tzinfo=IST)),  # Sunday night into Monday
        # Berlin springs forward on 2026-03-29 at 02:00: the wall clock still says 09:00.
        ("daily 09:00-17:00", BERLIN, datetime(2026, 3, 28, 17, 30, tzinfo=BERLIN),
         datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN)),
        ("sat 22:00-06:00", BERLIN, datetime(2026, 3, 28, 23, 0, tzinfo=BERLIN),
         datetime(2026, 3, 29, 6, 0, tzinfo=BERLIN)),  # an overnight shift an hour shorter
        # ...and falls back on 2026-10-25.
        ("sat 22:00-06:00", BERLIN, datetime(2026, 10, 24, 23, 0, tzinfo=BERLIN),
         datetime(2026, 10, 25, 6, 0, tzinfo=BERLIN)),
    ],
)
def test_next_shift_change(shift: str, tz: ZoneInfo, now: datetime, expected: datetime) -> None:
    parsed = Shift.parse(shift, tz)
    change = parsed.next_change(now)
    assert change == expected
    assert parsed.covers(change) != parsed.covers(change - timedelta(seconds=1))


def test_a_skipped_wall_time_fires_just_after_the_jump() -> None:
    shift = Shift.parse("sun 02:30-04:00", BERLIN)  # 02:30 never happens on 2026-03-29
    change = shift.next_change(datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN))
    assert change.astimezone(BERLIN) == datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    assert shift.covers(change)


@given(
    agents=agent_lists,
    batch=st.lists(mentions, max_size=12),
    now=moments,
    strategy=st.sampled_from(("least_loaded", "round_robin")),
    rules=rule_lists,
    away=st.sets(st.sampled_from([f"agent{i}" for i in range(6)])),
    preferred=st.sampled_from((None, "agent0", "agent1", "ghost")),
)
def test_a_run_of_assignments_never_breaks_eligibility(
    agents: list[AgentProfile], batch: list, now: datetime, strategy: str,
    rules: list[RoutingRule], away: set[str], preferred: str | None,
) -> None:
    """As the drain does: each decision raises the chosen agent's load for the next one.
    Nobody ends up over max_open, off shift, away, or without the channel and language."""
    profiles = [replace(a, available=a.id not in away) for a in agents]
    loads: dict[str, int] = {}
    last = None
    for mention in batch:
        decision = choose_agent(mention, profiles, loads, now, strategy, rules, last, preferred)
        if decision.agent_id is None:
            assert not [a for a in profiles
                        if a.available and really_eligible(a, mention, loads, now)]
            continue
        chosen = next(a for a in profiles if a.id == decision.agent_id)
        assert chosen.available and really_eligible(chosen, mention, loads, now)
        loads[chosen.id] = loads.get(chosen.id, 0) + 1
        last = chosen.id
    for a in profiles:
        assert loads.get(a.id, 0) <= a.max_open
        if not a.available:
            assert a.id not in loads


def test_agent_helper_defaults_to_available() -> None:
    assert agent("x").available


T0 = datetime(2026, 11, 21, 12, 0, tzinfo=IST)
DAY = timedelta(hours=24)
OWNERS = [
    ConversationOwner(10, "x", "conv-1", T0 - timedelta(hours=30), "ayse"),
    ConversationOwner(10, "x", None, T0 - timedelta(hours=2), "john"),
    ConversationOwner(20, "forum", "conv-2", T0 - timedelta(days=9), "can"),
    ConversationOwner(30, "x", None, T0 + timedelta(hours=1), "deniz"),
]


def waiting(customer: int | None, thread: str | None = None, source: str = "x") -> Mention:
    return Mention(customer_id=customer, source=source, thread=thread, created_at=T0)


@pytest.mark.parametrize(("mention", "exclude", "expected"), [
    (waiting(10), None, "john"),  # the newest of the customer's conversations
    (waiting(10), "john", None),  # a hand-off from john: ayse's is older than the window
    (waiting(10, "conv-1"), "john", "ayse"),  # ...but the same thread counts at any time
    (waiting(99, "conv-2", "forum"), None, "can"),
    (waiting(99, "conv-2"), None, None),  # the same thread id on another source
    (waiting(30), None, "deniz"),  # a later post of theirs was assigned first
    (waiting(None), None, None),
])
def test_the_drains_conversation_owner(mention: Mention, exclude: str | None,
                                       expected: str | None) -> None:
    assert conversation_owner(mention, OWNERS, DAY, exclude) == expected
