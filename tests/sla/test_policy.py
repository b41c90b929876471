from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.policy import (
    Deadline,
    MentionFacts,
    Policy,
    PolicyMatch,
    compute_deadline,
    select_policy,
    sla_state,
)
from tests.sla.test_calendar import (
    BERLIN,
    IST,
    MINUTE,
    SAFE_MINUTES,
    WEEKDAY_HOURS,
    CalendarSpec,
    istanbul,
    oracle_between,
    oracle_hours,
    oracle_subtract,
    spec_and_start,
)

SAME_DAY_BY_FOUR = Policy("default", PolicyMatch(), "same_day", cutoff=16 * 60,
                          at_risk=timedelta(hours=1))


def local(*args) -> datetime:
    return datetime(*args, tzinfo=IST)


# -- same_day examples (Europe/Istanbul, sat 10:00-14:00, TR holidays, closed 2026-12-31) ---


@pytest.mark.parametrize(
    ("posted", "due"),
    [
        pytest.param(local(2026, 11, 23, 10), local(2026, 11, 23, 18), id="mon-before-cutoff"),
        pytest.param(local(2026, 11, 23, 15, 59, 59), local(2026, 11, 23, 18), id="mon-15:59:59"),
        pytest.param(local(2026, 11, 23, 16), local(2026, 11, 24, 18), id="mon-at-cutoff"),
        pytest.param(local(2026, 11, 23, 16, 30), local(2026, 11, 24, 18), id="mon-after-cutoff"),
        pytest.param(local(2026, 11, 23, 18, 30), local(2026, 11, 24, 18), id="mon-after-close"),
        pytest.param(local(2026, 11, 23, 7), local(2026, 11, 23, 18), id="mon-before-opening"),
        pytest.param(local(2026, 11, 23, 0, 0), local(2026, 11, 23, 18), id="mon-midnight"),
        pytest.param(local(2026, 11, 28, 11), local(2026, 11, 28, 14), id="sat-within-hours"),
        pytest.param(local(2026, 11, 28, 8), local(2026, 11, 28, 14), id="sat-before-opening"),
        pytest.param(local(2026, 11, 28, 14), local(2026, 11, 30, 18), id="sat-at-closing"),
        pytest.param(local(2026, 11, 28, 15), local(2026, 11, 30, 18), id="sat-after-closing"),
        pytest.param(local(2026, 11, 29, 10), local(2026, 11, 30, 18), id="sunday"),
        pytest.param(local(2026, 11, 27, 16, 30), local(2026, 11, 28, 14), id="fri-late-to-sat"),
        pytest.param(local(2026, 10, 29, 10), local(2026, 10, 30, 18), id="republic-day"),
        pytest.param(local(2026, 10, 28, 12), local(2026, 10, 28, 13), id="half-day-before-13"),
        pytest.param(local(2026, 10, 28, 13), local(2026, 10, 30, 18), id="half-day-at-13"),
        pytest.param(local(2026, 10, 28, 14), local(2026, 10, 30, 18), id="half-day-after-13"),
        pytest.param(local(2026, 12, 31, 10), local(2027, 1, 2, 14), id="closed-date"),
        pytest.param(local(2027, 1, 1, 10), local(2027, 1, 2, 14), id="new-year"),
        pytest.param(datetime(2026, 11, 23, 12, 59, tzinfo=UTC), local(2026, 11, 23, 18),
                     id="given-in-utc"),
    ],
)
def test_same_day_deadline(posted, due):
    deadline = compute_deadline(SAME_DAY_BY_FOUR, istanbul(), posted)
    assert deadline.deadline_at == due
    assert deadline.deadline_at.tzinfo is UTC
    assert deadline.at_risk_at == max(posted, due - timedelta(hours=1))


def test_same_day_without_saturday_hours_goes_to_monday():
    calendar = istanbul(hours=WEEKDAY_HOURS)
    deadline = compute_deadline(SAME_DAY_BY_FOUR, calendar, local(2026, 11, 27, 16, 30))
    assert deadline.deadline_at == local(2026, 11, 30, 18)


def test_same_day_without_cutoff_uses_closing_time():
    policy = Policy("vip", PolicyMatch(), "same_day", cutoff=None, at_risk=None)
    calendar = istanbul()
    assert compute_deadline(policy, calendar, local(2026, 11, 23, 17, 59)).deadline_at == local(
        2026, 11, 23, 18)
    assert compute_deadline(policy, calendar, local(2026, 11, 23, 18)).deadline_at == local(
        2026, 11, 24, 18)
    assert compute_deadline(policy, calendar, local(2026, 11, 23, 10)).at_risk_at is None


def test_same_day_steps_explain_the_deadline():
    deadline = compute_deadline(SAME_DAY_BY_FOUR, istanbul(), local(2026, 11, 23, 15, 10))
    assert deadline == Deadline(
        policy="default",
        deadline_at=datetime(2026, 11, 23, 15, tzinfo=UTC),
        at_risk_at=datetime(2026, 11, 23, 14, tzinfo=UTC),
        steps=(
            "policy default",
            "posted 2026-11-23 15:10 Europe/Istanbul (Monday)",
            "before cutoff 16:00 on a business day",
            "due at closing time 18:00 → 2026-11-23 18:00 +03:00",
            "at risk 1h before → 17:00",
        ),
    )


def test_steps_name_the_holiday_and_the_next_business_day():
    steps = compute_deadline(SAME_DAY_BY_FOUR, istanbul(), local(2026, 10, 28, 14)).steps
    assert "cutoff 16:00 is after closing time 13:00 (half day: Republic Day (from 1pm)), " \
           "so closing time acts as the cutoff" in steps
    assert "at or after closing time 13:00" in steps
    assert "next business day: Friday 2026-10-30" in steps
    steps = compute_deadline(SAME_DAY_BY_FOUR, istanbul(), local(2026, 10, 29, 9)).steps
    assert "2026-10-29 is not a business day (public holiday: Republic Day)" in steps


def test_same_day_uses_local_wall_clock_across_dst():
    calendar = BusinessCalendar.from_config("Europe/Berlin", WEEKDAY_HOURS)
    # Saturday before the spring change (UTC+1) → Monday after it (UTC+2).
    saturday = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    deadline = compute_deadline(SAME_DAY_BY_FOUR, calendar, saturday)
    assert deadline.deadline_at == datetime(2026, 3, 30, 16, tzinfo=UTC)
    assert deadline.at_risk_at == datetime(2026, 3, 30, 15, tzinfo=UTC)
    assert deadline.steps[-2] == "due at closing time 18:00 → 2026-03-30 18:00 +02:00"
    # Saturday before the autumn change (UTC+2) → Monday after it (UTC+1).
    saturday = datetime(2026, 10, 24, 12, tzinfo=BERLIN)
    deadline = compute_deadline(SAME_DAY_BY_FOUR, calendar, saturday)
    assert deadline.deadline_at == datetime(2026, 10, 26, 17, tzinfo=UTC)


# -- durations and at_risk ---------------------------------------------------------------------


def test_duration_counts_business_time_only():
    policy = Policy("fast", PolicyMatch(), timedelta(hours=2), cutoff=None, at_risk=0.75)
    deadline = compute_deadline(policy, istanbul(), local(2026, 11, 29, 17, 30))
    assert deadline.deadline_at == local(2026, 11, 30, 11)
    assert deadline.at_risk_at == local(2026, 11, 30, 9, 30)
    assert deadline.steps[2:] == (
        "counts 2h of business time",
        "out of hours: the clock starts at the next opening → 2026-11-30 09:00 +03:00",
        "due → 2026-11-30 11:00 +03:00",
        "at risk when 75% (1h30m) is left → 09:30",
    )


def test_duration_across_dst_in_berlin():
    policy = Policy("fast", PolicyMatch(), timedelta(hours=2), cutoff=None, at_risk=None)
    calendar = BusinessCalendar.from_config("Europe/Berlin", WEEKDAY_HOURS)
    deadline = compute_deadline(policy, calendar, datetime(2026, 3, 27, 17, tzinfo=BERLIN))
    assert deadline.deadline_at == datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_at_risk_larger_than_the_whole_window_is_at_risk_from_the_start():
    policy = Policy("p", PolicyMatch(), "same_day", cutoff=None, at_risk=timedelta(hours=3))
    posted = local(2026, 11, 23, 16)
    deadline = compute_deadline(policy, istanbul(), posted)
    assert deadline.at_risk_at == posted
    assert "at risk from the start" in deadline.steps[-1]


def test_at_risk_skips_the_weekend_backwards():
    policy = Policy("p", PolicyMatch(), timedelta(hours=3), cutoff=None, at_risk=timedelta(hours=2))
    deadline = compute_deadline(policy, istanbul(hours=WEEKDAY_HOURS), local(2026, 11, 27, 17))
    assert deadline.deadline_at == local(2026, 11, 30, 11)
    assert deadline.at_risk_at == local(2026, 11, 30, 9)
    assert deadline.steps[-1] == "at risk 2h before → 09:00"
    policy = Policy("p", PolicyMatch(), timedelta(hours=3), cutoff=None, at_risk=0.9)
    deadline = compute_deadline(policy, istanbul(hours=WEEKDAY_HOURS), local(2026, 11, 27, 17))
    assert deadline.at_risk_at == local(2026, 11, 27, 17, 18)
    assert deadline.steps[-1] == "at risk when 90% (2h42m) is left → 2026-11-27 17:18 +03:00"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"first_response": "tomorrow"}, "first_response must be"),
        ({"first_response": timedelta(0)}, "first_response must be positive"),
        ({"cutoff": 1500}, "cutoff must be within the day"),
        ({"at_risk": 1.5}, r"fraction must be in \(0, 1\]"),
        ({"at_risk": timedelta(hours=-1)}, "must not be negative"),
    ],
)
def test_policy_rejects_nonsense(fields, message):
    with pytest.raises(ValueError, match=message):
        Policy(**{"name": "p", "match": PolicyMatch(), "first_response": "same_day",
                  "cutoff": None, "at_risk": None, **fields})


def test_naive_created_at_is_refused():
    with pytest.raises(ValueError, match="aware datetime"):
        compute_deadline(SAME_DAY_BY_FOUR, istanbul(), datetime(2026, 11, 23, 10))


# -- select_policy ------------------------------------------------------------------------------


def test_select_policy_first_match_wins():
    vip = Policy("vip", PolicyMatch(segments=frozenset({"vip"})), timedelta(hours=1))
    turkish_x = Policy("tr-x", PolicyMatch(channels=frozenset({"x"}),
                                           languages=frozenset({"tr"})), "same_day")
    anything = Policy("default", PolicyMatch(), "same_day")
    policies = [vip, turkish_x, anything]
    assert select_policy(policies, MentionFacts("x", "brand-x", "tr", "vip")) is vip
    assert select_policy(policies, MentionFacts("x", "brand-x", "tr")) is turkish_x
    assert select_policy(policies, MentionFacts("x", "brand-x", "en")) is anything
    assert select_policy(policies, MentionFacts("reddit", "r/brand", "tr")) is anything
    assert select_policy(policies[:2], MentionFacts("reddit", "r/brand")) is None
    assert select_policy([], MentionFacts("x", "brand-x")) is None


def test_policy_match_needs_every_given_field():
    match = PolicyMatch(sources=frozenset({"a", "b"}), priorities=frozenset({"high"}))
    assert match.matches(MentionFacts("x", "a", priority="high"))
    assert not match.matches(MentionFacts("x", "a", priority="low"))
    assert not match.matches(MentionFacts("x", "c", priority="high"))
    assert not match.matches(MentionFacts("x", "a"))


# -- sla_state ----------------------------------------------------------------------------------

DUE = datetime(2026, 11, 23, 15, tzinfo=UTC)
RISK = DUE - timedelta(hours=1)


@pytest.mark.parametrize(
    ("deadline_at", "at_risk_at", "first_response_at", "now", "state"),
    [
        (DUE, RISK, None, RISK - MINUTE, "on_track"),
        (DUE, None, None, DUE - MINUTE, "on_track"),
        (DUE, RISK, None, RISK, "at_risk"),
        (DUE, RISK, None, DUE - MINUTE, "at_risk"),
        (DUE, RISK, None, DUE, "breached"),
        (DUE, None, None, DUE + timedelta(days=3), "breached"),
        (DUE, RISK, DUE, DUE + MINUTE, "met"),
        (DUE, RISK, RISK, RISK, "met"),
        (DUE, RISK, DUE + MINUTE, DUE + timedelta(days=1), "missed"),
        (DUE, RISK, DUE + MINUTE, RISK, "missed"),
        (None, None, None, DUE, None),
        (None, None, DUE, DUE, None),
    ],
)
def test_sla_state(deadline_at, at_risk_at, first_response_at, now, state):
    assert sla_state(deadline_at, at_risk_at, first_response_at, now) == state


# -- properties against the oracle -------------------------------------------------------------


def oracle_same_day(spec: CalendarSpec, cutoff: int | None, created: datetime) -> datetime:
    """The SPEC §3 rule read literally, on local wall-clock dates and minutes."""
    posted = created.astimezone(spec.tz)
    day = posted.date()
    hours = oracle_hours(spec, day)
    if hours is not None:
        effective_cutoff = hours[1] if cutoff is None else min(cutoff, hours[1])
        if posted.hour * 60 + posted.minute < effective_cutoff:
            return _local_instant(spec, day, hours[1])
    day += timedelta(days=1)
    while oracle_hours(spec, day) is None:
        day += timedelta(days=1)
    return _local_instant(spec, day, oracle_hours(spec, day)[1])


def _local_instant(spec: CalendarSpec, day: date, minute: int) -> datetime:
    day, minute = (day + timedelta(days=1), 0) if minute == 24 * 60 else (day, minute)
    return datetime.combine(day, time(minute // 60, minute % 60), spec.tz).astimezone(UTC)


def _is_a_closing_time(calendar: BusinessCalendar, moment: datetime) -> bool:
    day = moment.astimezone(calendar.tz).date()
    intervals = (calendar.open_interval(day - timedelta(days=d)) for d in (0, 1))
    return any(i is not None and i[1].astimezone(UTC) == moment for i in intervals)


at_risk_values = st.one_of(
    st.none(),
    st.integers(0, 16 * 60).map(lambda m: m * MINUTE),
    st.integers(1, 100).map(lambda p: p / 100),
)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_same_day_matches_oracle(data):
    spec, created = data.draw(spec_and_start())
    posted = created.astimezone(spec.tz)
    posted_minute = posted.hour * 60 + posted.minute
    at_posting = [posted_minute] if posted_minute in SAFE_MINUTES else []
    cutoff = data.draw(st.none() | st.sampled_from(SAFE_MINUTES + at_posting * 20))
    at_risk = data.draw(at_risk_values)
    calendar = spec.build()
    policy = Policy("p", PolicyMatch(), "same_day", cutoff=cutoff, at_risk=at_risk)
    deadline = compute_deadline(policy, calendar, created)
    assert deadline.deadline_at == oracle_same_day(spec, cutoff, created)
    assert deadline.deadline_at >= created
    assert _is_a_closing_time(calendar, deadline.deadline_at)
    check_at_risk(spec, calendar, at_risk, created, deadline)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_duration_deadline_properties(data):
    spec, created = data.draw(spec_and_start())
    weekly = sum(closes - opens for _, opens, closes in spec.hours)
    duration = data.draw(st.integers(1, min(2 * 24 * 60, 2 * weekly))) * MINUTE
    at_risk = data.draw(at_risk_values)
    calendar = spec.build()
    policy = Policy("p", PolicyMatch(), duration, cutoff=None, at_risk=at_risk)
    deadline = compute_deadline(policy, calendar, created)
    assert deadline.deadline_at > created
    assert oracle_between(spec, created, deadline.deadline_at) == duration
    check_at_risk(spec, calendar, at_risk, created, deadline)


def check_at_risk(spec, calendar, at_risk, created, deadline) -> None:
    if at_risk is None:
        assert deadline.at_risk_at is None
        return
    assert created <= deadline.at_risk_at <= deadline.deadline_at
    total = calendar.business_time_between(created, deadline.deadline_at)
    left = at_risk if isinstance(at_risk, timedelta) else total * at_risk
    if isinstance(at_risk, timedelta):
        expected = oracle_subtract(spec, deadline.deadline_at, left // MINUTE, created)
        assert deadline.at_risk_at == expected
    elif left <= total:
        remaining = calendar.business_time_between(deadline.at_risk_at, deadline.deadline_at)
        assert abs(remaining - left) <= timedelta(microseconds=1)


def test_oracle_helpers_agree_on_a_known_week():
    """Guards the oracle itself with a hand-checked case."""
    spec = CalendarSpec(IST, ((0, 540, 1080), (5, 600, 840)), frozenset({date(2026, 11, 24)}),
                        "TR")
    monday = datetime(2026, 11, 23, 17, tzinfo=IST)
    assert oracle_between(spec, monday, monday + timedelta(days=7)) == timedelta(hours=1 + 4 + 8)
    assert oracle_same_day(spec, None, monday) == datetime(2026, 11, 23, 15, tzinfo=UTC)
    assert oracle_same_day(spec, 16 * 60, monday) == datetime(2026, 11, 28, 11, tzinfo=UTC)
