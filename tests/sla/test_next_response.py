"""The follow-up clock: when a customer writes again after a response."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.policy import Policy, PolicyMatch, compute_deadline, compute_next_deadline
from tests.sla.test_calendar import (
    IST,
    MINUTE,
    istanbul,
    oracle_add,
    oracle_between,
    spec_and_start,
    weekly_minutes,
)
from tests.sla.test_policy import oracle_same_day

HOUR = timedelta(hours=1)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=IST)


def test_next_response_counts_its_own_business_time():
    vip = Policy("vip", PolicyMatch(), 2 * HOUR, at_risk=[0.5], next_response=HOUR,
                 escalate_after=HOUR)
    deadline = compute_next_deadline(vip, istanbul(), local(2026, 11, 23, 17, 30))
    assert deadline.deadline_at == local(2026, 11, 24, 9, 30)
    # 30m are left from closing time on, but the warning belongs at the opening.
    assert deadline.warnings == (local(2026, 11, 24, 9),)
    assert deadline.escalate_at == local(2026, 11, 24, 10, 30)
    assert deadline.policy == "vip"
    assert deadline.steps[:5] == (
        "policy vip",
        "next response: the customer wrote again 2026-11-23 17:30 Europe/Istanbul (Monday)",
        "next response counts 1h of business time",
        "due → 2026-11-24 09:30 +03:00",
        "at risk when 50% (30m) is left → 09:00",
    )


def test_without_next_response_the_follow_up_gets_the_first_response_rule():
    same_day = Policy("same-day", PolicyMatch(), "same_day", cutoff=16 * 60, at_risk=HOUR)
    written = local(2026, 11, 23, 16, 30)
    deadline = compute_next_deadline(same_day, istanbul(), written)
    assert deadline.deadline_at == compute_deadline(same_day, istanbul(), written).deadline_at
    assert deadline.deadline_at == local(2026, 11, 24, 18)
    assert "next response: no next_response set, so the first_response rule applies" in (
        deadline.steps)
    assert deadline.steps[-1] == "at risk 1h before → 17:00"


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_next_response_deadline_matches_oracle(data):
    spec, written = data.draw(spec_and_start())
    weekly = weekly_minutes(spec)
    minutes = data.draw(st.none() | st.integers(1, min(2 * 24 * 60, 2 * weekly)))
    first = data.draw(st.sampled_from(["same_day", 30 * MINUTE]))
    policy = Policy("p", PolicyMatch(), first, next_response=minutes and minutes * MINUTE)
    deadline = compute_next_deadline(policy, spec.build(), written)
    if minutes is None:
        expected = (oracle_same_day(spec, None, written) if first == "same_day"
                    else oracle_add(spec, written, 30))
        assert deadline.deadline_at == expected
    else:
        assert deadline.deadline_at == oracle_add(spec, written, minutes)
        assert oracle_between(spec, written, deadline.deadline_at) == minutes * MINUTE
    assert deadline.deadline_at >= written
    assert deadline.steps[1].startswith("next response: ")
