"""Alert moments of a mention's clock, and which of them the engine alerts now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.moments import KINDS, Moment, alert_moments, deadline_moments, due_moments
from sla.planner import DeadlinePlanner
from sla.policy import Policy, PolicyMatch, compute_deadline, compute_next_deadline
from tests.sla.test_calendar import (
    IST,
    MINUTE,
    istanbul,
    oracle_add,
    spec_and_start,
    weekly_minutes,
)

HOUR = timedelta(hours=1)
ESCALATING = Policy("vip", PolicyMatch(), 2 * HOUR, at_risk=[HOUR, 0.75],
                    escalate_after=HOUR, escalate_to=("lead-team",))


def local(*args) -> datetime:
    return datetime(*args, tzinfo=IST)


# -- alert_moments ----------------------------------------------------------------------------


def test_moments_are_the_warnings_the_breach_and_the_escalation_in_time_order():
    posted = local(2026, 11, 23, 15, 30)
    moments = alert_moments(ESCALATING, istanbul(), posted, local(2026, 11, 23, 17, 30))
    assert moments == [
        Moment("at_risk", 0, local(2026, 11, 23, 16)),  # 75% (1h30m) left
        Moment("at_risk", 1, local(2026, 11, 23, 16, 30)),  # 1h left
        Moment("breached", 0, local(2026, 11, 23, 17, 30)),
        Moment("escalated", 0, local(2026, 11, 24, 9, 30)),  # 1h of business time later
    ]
    assert all(moment.at.tzinfo is UTC for moment in moments)
    assert deadline_moments(compute_deadline(ESCALATING, istanbul(), posted)) == moments


def test_without_warnings_or_escalation_only_the_breach_is_a_moment():
    plain = Policy("plain", PolicyMatch(), "same_day")
    due = local(2026, 11, 23, 18)
    assert alert_moments(plain, istanbul(), local(2026, 11, 23, 10), due) == [
        Moment("breached", 0, due)]


def test_a_warning_at_the_deadline_comes_before_the_breach():
    last_call = Policy("p", PolicyMatch(), HOUR, at_risk=[timedelta(0)])
    due = local(2026, 11, 23, 11)
    assert [m.kind for m in alert_moments(last_call, istanbul(), local(2026, 11, 23, 10), due)
            ] == ["at_risk", "breached"]


def test_moments_follow_the_stored_deadline_not_a_recomputed_one():
    """The config may have changed since the deadline was stored; the alerts still match
    what the dashboard shows."""
    stored = local(2026, 11, 24, 12)
    moments = alert_moments(ESCALATING, istanbul(), local(2026, 11, 23, 15, 30), stored)
    assert [m.at for m in moments if m.kind != "at_risk"] == [stored, local(2026, 11, 24, 13)]
    assert moments[1].at == local(2026, 11, 24, 11)  # 1h before the stored deadline


def test_the_planner_keeps_the_breach_of_a_policy_gone_from_the_config():
    planner = DeadlinePlanner([ESCALATING], istanbul())
    due = local(2026, 11, 23, 17, 30)
    assert planner.moments("removed", local(2026, 11, 23, 15, 30), due) == [
        Moment("breached", 0, due)]
    assert planner.moments("vip", local(2026, 11, 23, 15, 30), due) == alert_moments(
        ESCALATING, istanbul(), local(2026, 11, 23, 15, 30), due)


at_risk_lists = st.lists(
    st.integers(0, 16 * 60).map(lambda m: m * MINUTE) | st.integers(1, 100).map(lambda p: p / 100),
    max_size=4)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_moments_of_a_computed_deadline_match_the_oracle(data):
    spec, started = data.draw(spec_and_start())
    weekly = weekly_minutes(spec)
    first = data.draw(st.sampled_from(["same_day", None]))
    first = first or data.draw(st.integers(1, min(24 * 60, weekly))) * MINUTE
    after = data.draw(st.none() | st.integers(1, min(24 * 60, weekly)))
    policy = Policy("p", PolicyMatch(), first, at_risk=data.draw(at_risk_lists),
                    escalate_after=after and after * MINUTE,
                    next_response=data.draw(st.none() | st.just(HOUR)))
    calendar = spec.build()
    compute = data.draw(st.sampled_from([compute_deadline, compute_next_deadline]))
    deadline = compute(policy, calendar, started)
    moments = alert_moments(policy, calendar, started, deadline.deadline_at)
    assert moments == deadline_moments(deadline)
    assert [m.at for m in moments] == sorted(m.at for m in moments)
    assert [m.at for m in moments if m.kind == "at_risk"] == list(deadline.warnings)
    assert [m.index for m in moments if m.kind == "at_risk"] == list(range(len(deadline.warnings)))
    assert [m for m in moments if m.kind == "breached"] == [
        Moment("breached", 0, deadline.deadline_at)]
    escalations = [m.at for m in moments if m.kind == "escalated"]
    assert escalations == ([] if after is None else [oracle_add(spec, deadline.deadline_at, after)])
    assert len({(m.kind, m.index) for m in moments}) == len(moments)


# -- due_moments ------------------------------------------------------------------------------

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
FOUR = [Moment("at_risk", 0, T0), Moment("at_risk", 1, T0 + HOUR),
        Moment("breached", 0, T0 + 2 * HOUR), Moment("escalated", 0, T0 + 3 * HOUR)]


def test_nothing_is_due_before_the_first_moment():
    assert due_moments(FOUR, 0, T0 - MINUTE) == ([], 0, T0)


def test_a_moment_is_due_at_its_instant():
    assert due_moments(FOUR, 0, T0) == ([FOUR[0]], 1, T0 + HOUR)
    assert due_moments(FOUR, 1, T0 + HOUR) == ([FOUR[1]], 2, T0 + 2 * HOUR)


def test_after_a_restart_only_the_latest_passed_moment_is_alerted():
    """Down from before the first warning until after the breach: one breach alert, no
    stale warnings, and the escalation still to come."""
    assert due_moments(FOUR, 0, T0 + 2 * HOUR + MINUTE) == ([FOUR[2]], 3, T0 + 3 * HOUR)
    assert due_moments(FOUR, 3, T0 + 2 * HOUR + 2 * MINUTE) == ([], 3, T0 + 3 * HOUR)


def test_when_all_are_handled_there_is_nothing_next():
    assert due_moments(FOUR, 3, T0 + 5 * HOUR) == ([FOUR[3]], 4, None)
    assert due_moments(FOUR, 4, T0 + 6 * HOUR) == ([], 4, None)
    assert due_moments([], 0, T0) == ([], 0, None)


def test_a_count_beyond_the_moments_is_taken_as_all_handled():
    """A config change can leave fewer moments than were handled."""
    assert due_moments(FOUR[:2], 3, T0 + 5 * HOUR) == ([], 2, None)


@st.composite
def moment_lists(draw) -> list[Moment]:
    due = T0 + draw(st.integers(0, 600)) * MINUTE
    warnings = draw(st.sets(st.integers(0, 300), max_size=4))
    moments = [Moment("at_risk", i, due - minutes * MINUTE)
               for i, minutes in enumerate(sorted(warnings, reverse=True))]
    moments.append(Moment("breached", 0, due))
    if draw(st.booleans()):
        moments.append(Moment("escalated", 0, due + draw(st.integers(1, 300)) * MINUTE))
    return sorted(moments, key=lambda m: (m.at, KINDS.index(m.kind)))


@settings(max_examples=300, deadline=None)
@given(moments=moment_lists(),
       steps=st.lists(st.integers(0, 240), min_size=1, max_size=12))
def test_due_moments_over_successive_rounds(moments, steps):
    """The engine calls with the count it stored last time and a later `now` each round."""
    fired, now, alerted = 0, T0 - 400 * MINUTE, []
    for step in steps:
        now += step * MINUTE
        to_alert, fired_after, next_at = due_moments(moments, fired, now)
        assert len(to_alert) <= 1
        assert all(moment.at <= now for moment in to_alert)
        assert fired_after >= fired
        passed = [m for m in moments if m.at <= now]
        assert fired_after == len(passed)
        if to_alert:
            assert to_alert == [passed[-1]]  # the latest one that has passed
        later = [m.at for m in moments if m.at > now]
        assert next_at == (later[0] if later else None)
        alerted.extend((m.kind, m.index) for m in to_alert)
        fired = fired_after
    assert len(alerted) == len(set(alerted))
    # Every moment the rounds went past is accounted for, alerted or skipped, once.
    assert fired == len([m for m in moments if m.at <= now])
