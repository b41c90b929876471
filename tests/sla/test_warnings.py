"""Several at-risk warnings and the escalation past the deadline, by example and against
the minute-stepping oracle of test_calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.policy import Deadline, Policy, PolicyMatch, compute_deadline, warning_moments
from tests.sla.test_calendar import (
    IST,
    MINUTE,
    WEEKDAY_HOURS,
    CalendarSpec,
    _minute_state,
    istanbul,
    oracle_add,
    oracle_between,
    oracle_subtract,
    spec_and_start,
    weekly_minutes,
)

HOUR = timedelta(hours=1)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=IST)


def policy(**fields) -> Policy:
    return Policy(**{"name": "p", "match": PolicyMatch(), "first_response": "same_day", **fields})


# -- examples (Europe/Istanbul, mon-fri 09:00-18:00, sat 10:00-14:00, TR holidays) --------


def test_a_list_of_durations_warns_at_each():
    deadline = compute_deadline(policy(at_risk=[HOUR, 3 * HOUR]), istanbul(),
                                local(2026, 11, 23, 10))
    assert deadline.deadline_at == local(2026, 11, 23, 18)
    assert deadline.warnings == (local(2026, 11, 23, 15), local(2026, 11, 23, 17))
    assert deadline.at_risk_at == local(2026, 11, 23, 15)  # the dashboard's amber: the first
    assert deadline.steps[-2:] == ("at risk 3h before → 15:00", "at risk 1h before → 17:00")


def test_a_list_of_fractions_warns_at_each():
    fast = policy(first_response=2 * HOUR, at_risk=[0.5, 0.9])
    deadline = compute_deadline(fast, istanbul(), local(2026, 11, 23, 10))
    # 90% left comes first (12 minutes in), 50% left at half time.
    assert deadline.warnings == (local(2026, 11, 23, 10, 12), local(2026, 11, 23, 11))
    assert deadline.steps[-2:] == ("at risk when 90% (1h48m) is left → 10:12",
                                   "at risk when 50% (1h) is left → 11:00")


def test_warnings_that_meet_at_the_start_are_one():
    deadline = compute_deadline(policy(at_risk=[3 * HOUR, 5 * HOUR, HOUR]), istanbul(),
                                local(2026, 11, 23, 16))
    assert deadline.warnings == (local(2026, 11, 23, 16), local(2026, 11, 23, 17))
    assert sum("at risk from the start" in step for step in deadline.steps) == 2


def test_a_warning_across_the_weekend_waits_for_monday_opening():
    deadline = compute_deadline(policy(first_response=3 * HOUR, at_risk=[2 * HOUR, 0.25]),
                                istanbul(hours=WEEKDAY_HOURS), local(2026, 11, 27, 17))
    assert deadline.deadline_at == local(2026, 11, 30, 11)
    assert deadline.warnings == (local(2026, 11, 30, 9), local(2026, 11, 30, 10, 15))


def test_a_single_value_keeps_working():
    assert policy(at_risk=HOUR).at_risk == (HOUR,)
    assert policy(at_risk=0.25).at_risk == (0.25,)
    assert policy(at_risk=None).at_risk == ()
    assert compute_deadline(policy(), istanbul(), local(2026, 11, 23, 10)).warnings == ()


def test_escalation_counts_business_time_past_the_deadline():
    two_hours = policy(first_response=2 * HOUR, at_risk=[HOUR], escalate_after=HOUR,
                       escalate_to=("lead-team", "zeynep"))
    deadline = compute_deadline(two_hours, istanbul(), local(2026, 11, 23, 15, 30))
    assert deadline.deadline_at == local(2026, 11, 23, 17, 30)
    # 30 minutes before closing, 30 after the next opening: when someone can act.
    assert deadline.escalate_at == local(2026, 11, 24, 9, 30)
    assert deadline.steps[-1] == ("escalates to lead-team, zeynep 1h of business time after "
                                  "the deadline → 2026-11-24 09:30 +03:00")


def test_a_same_day_deadline_escalates_the_next_morning():
    deadline = compute_deadline(policy(cutoff=16 * 60, escalate_after=30 * MINUTE), istanbul(),
                                local(2026, 11, 27, 12))
    assert deadline.deadline_at == local(2026, 11, 27, 18)
    assert deadline.escalate_at == local(2026, 11, 28, 10, 30)  # Saturday 10:00-14:00
    assert compute_deadline(policy(), istanbul(), local(2026, 11, 27, 12)).escalate_at is None


def test_a_deadline_built_by_hand_keeps_its_warnings_consistent():
    due = datetime(2026, 11, 23, 15, tzinfo=UTC)
    assert Deadline("p", due, due - HOUR, ()).warnings == (due - HOUR,)
    assert Deadline("p", due, None, ()).warnings == ()
    with pytest.raises(ValueError, match="first of the warnings"):
        Deadline("p", due, due - HOUR, (), warnings=(due - 2 * HOUR, due - HOUR))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"at_risk": [HOUR, 0.0]}, r"fraction must be in \(0, 1\]"),
        ({"at_risk": [-HOUR]}, "must not be negative"),
        ({"escalate_after": timedelta(0)}, "escalate_after must be positive"),
        ({"escalate_to": ("lead-team",)}, "escalate_to needs escalate_after"),
        ({"next_response": timedelta(0)}, "next_response must be positive"),
    ],
)
def test_policy_rejects_nonsense_alerts(fields, message):
    with pytest.raises(ValueError, match=message):
        policy(**fields)


# -- properties against the oracle -----------------------------------------------------------

levels = st.one_of(
    st.integers(0, 16 * 60).map(lambda m: m * MINUTE),
    st.integers(1, 100).map(lambda p: p / 100),
)


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def oracle_subtract_fraction(spec: CalendarSpec, due: datetime, left: timedelta,
                             floor: datetime) -> datetime:
    """The latest moment from which `left` (not whole minutes) of open time remains:
    walk back the whole minutes, then into the next open minute for the rest."""
    whole, rest = divmod(left, MINUTE)
    cursor = oracle_subtract(spec, due, whole, floor)
    if not rest:
        return cursor
    while cursor > floor and _minute_state(spec, cursor - MINUTE) != "open":
        cursor -= MINUTE
    return max(floor, cursor - rest)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_each_warning_leaves_exactly_its_business_time(data):
    spec, created = data.draw(spec_and_start())
    weekly = weekly_minutes(spec)
    first_response = data.draw(st.sampled_from(["same_day", None]))
    if first_response is None:
        first_response = data.draw(st.integers(1, min(2 * 24 * 60, 2 * weekly))) * MINUTE
    at_risk = data.draw(st.lists(levels, min_size=1, max_size=4))
    calendar = spec.build()
    deadline = compute_deadline(policy(first_response=first_response, at_risk=at_risk),
                                calendar, created)
    due = deadline.deadline_at
    total = oracle_between(spec, created, due)
    assert deadline.warnings == tuple(sorted(set(deadline.warnings)))
    assert deadline.at_risk_at == deadline.warnings[0]
    assert all(created <= moment <= due for moment in deadline.warnings)
    expected = set()
    for level in at_risk:
        if isinstance(level, timedelta):
            moment = oracle_subtract(spec, due, level // MINUTE, created)
            if level <= total:
                assert oracle_between(spec, moment, due) == level
            expected.add(moment)
            continue
        left = total * level
        moment = oracle_subtract_fraction(spec, due, left, created)
        assert _floor_minute(moment) >= created
        # Within a minute, open time is all or nothing: bracket by the whole minutes around.
        assert (oracle_between(spec, _floor_minute(moment), due) >= left
                >= oracle_between(spec, _floor_minute(moment) + MINUTE, due))
        expected.add(moment)
    assert set(deadline.warnings) == expected
    assert warning_moments(at_risk, calendar, created, due) == deadline.warnings


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_escalation_is_its_business_time_past_the_deadline(data):
    spec, created = data.draw(spec_and_start())
    weekly = weekly_minutes(spec)
    first_response = data.draw(st.integers(1, min(24 * 60, weekly))) * MINUTE
    after = data.draw(st.integers(1, min(2 * 24 * 60, 2 * weekly)))
    calendar = spec.build()
    escalating = policy(first_response=first_response, escalate_after=after * MINUTE)
    deadline = compute_deadline(escalating, calendar, created)
    assert deadline.escalate_at == oracle_add(spec, deadline.deadline_at, after)
    assert deadline.escalate_at > deadline.deadline_at
    assert oracle_between(spec, deadline.deadline_at, deadline.escalate_at) == after * MINUTE


def test_the_oracle_sees_open_dates_as_open():
    """Guards the oracle: a Sunday campaign counts as nine open hours."""
    sunday = datetime(2026, 11, 29, tzinfo=IST)
    spec = CalendarSpec(IST, ((0, 540, 1080),), frozenset(), None,
                        frozenset({sunday.date()}))
    assert oracle_between(spec, sunday, sunday + timedelta(days=1)) == 9 * HOUR
    assert spec.build().business_time_between(sunday, sunday + timedelta(days=1)) == 9 * HOUR
