"""The planner's per-hour and per-minute memo gives exactly what the pure functions give.

Mentions arrive many a minute; the planner shares one computation across an hour, or a
minute, when the answer provably holds for all of it. These properties post bursts of
mentions into the same and neighbouring minutes, or anywhere in an hour or two (first
and last microsecond included), on random
calendars (any hours, DST changes, holidays, odd-second durations) and compare every
deadline, warning, escalation and explanation step with `compute_deadline` /
`compute_next_deadline` on a freshly built calendar.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.planner import DeadlinePlanner
from sla.policy import (
    MentionFacts,
    Policy,
    PolicyMatch,
    compute_deadline,
    compute_next_deadline,
)
from tests.sla.test_calendar import CalendarSpec, minutes_in_range

FACTS = MentionFacts("twitter", "x")
ZONES = [ZoneInfo(name) for name in
         ("Europe/Istanbul", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "UTC")]
durations = st.integers(1, 3 * 24 * 3600).map(lambda s: timedelta(seconds=s))


@st.composite
def calendars(draw) -> CalendarSpec:
    """Any minutes (DST gaps included), 24-hour days, holidays or not."""
    hours = []
    for weekday in sorted(draw(st.sets(st.integers(0, 6), min_size=1))):
        opens, closes = sorted(draw(st.lists(st.integers(0, 24 * 60), min_size=2, max_size=2,
                                             unique=True)))
        hours.append((weekday, opens, closes))
    country = draw(st.sampled_from([None, "TR", "DE"]))
    return CalendarSpec(draw(st.sampled_from(ZONES)), tuple(hours), frozenset(), country)


@st.composite
def policies(draw) -> Policy:
    rule = draw(st.just("same_day") | durations)
    at_risk = draw(st.lists(durations | st.integers(1, 100).map(lambda p: p / 100),
                            max_size=2))
    return Policy(
        "p", PolicyMatch(), rule,
        cutoff=draw(st.none() | st.integers(0, 24 * 60)) if rule == "same_day" else None,
        at_risk=at_risk, escalate_after=draw(st.none() | durations),
        next_response=draw(st.none() | durations),
    )


@st.composite
def bursts(draw):
    """Posting times: a few minutes, each with several mentions at chosen instants."""
    minute = draw(minutes_in_range())
    times = []
    for _ in range(draw(st.integers(1, 3))):
        minute += timedelta(minutes=draw(st.integers(0, 3)))
        offsets = draw(st.lists(st.sampled_from([0, 59_999_999]) | st.integers(0, 59_999_999),
                                min_size=2, max_size=6))
        times.extend(minute + timedelta(microseconds=offset) for offset in offsets)
    return times


@st.composite
def hours_of_posts(draw):
    """Posting times anywhere in one or two UTC hours (their first and last microsecond
    included): the memo shares a whole hour when one answer holds for all of it."""
    hour = draw(minutes_in_range()).replace(minute=0)
    last = 3_600_000_000 - 1
    offsets = draw(st.lists(st.sampled_from([0, last]) | st.integers(0, 2 * last + 1),
                            min_size=2, max_size=8))
    return [hour + timedelta(microseconds=offset) for offset in offsets]


@settings(max_examples=300, deadline=None)
@given(spec=calendars(), policy=policies(), times=bursts() | hours_of_posts())
def test_memoised_plans_equal_the_pure_functions(spec, policy, times):
    planner = DeadlinePlanner([policy], spec.build())
    for posted in times:
        assert planner.plan(FACTS, posted) == compute_deadline(policy, spec.build(), posted)
        assert planner.plan_follow_up(FACTS, posted) == compute_next_deadline(
            policy, spec.build(), posted)
        in_other_zone = posted.astimezone(ZoneInfo("Asia/Tokyo"))
        assert planner.plan(FACTS, in_other_zone) == compute_deadline(
            policy, spec.build(), posted)
