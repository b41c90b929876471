"""Which policy applies to a mention and when it is due, from the validated config."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sla.calendar import BusinessCalendar, as_utc
from sla.moments import Moment, alert_moments
from sla.policy import (
    Deadline,
    MentionFacts,
    Policy,
    PolicyMatch,
    compute_deadline,
    compute_next_deadline,
    select_policy,
)


def policy_from_config(config: Any) -> Policy:
    match = config.match
    return Policy(
        name=config.name,
        match=PolicyMatch(
            channels=frozenset(match.channels),
            sources=frozenset(match.sources),
            languages=frozenset(match.languages),
            segments=frozenset(match.segments),
            priorities=frozenset(match.priorities),
        ),
        first_response=config.first_response,
        cutoff=config.cutoff,
        at_risk=config.at_risk,
        escalate_after=config.escalate_after,
        escalate_to=tuple(config.escalate_to),
        next_response=config.next_response,
    )


def calendar_from_config(config: Any) -> BusinessCalendar:
    holidays = config.calendar.holidays
    return BusinessCalendar.from_config(
        config.timezone,
        config.calendar.hours,
        holiday_country=holidays.country if holidays else None,
        closed=config.calendar.closed,
        open_dates=config.calendar.open,
    )


class DeadlinePlanner:
    def __init__(self, policies: Sequence[Policy], calendar: BusinessCalendar):
        self.policies = tuple(policies)
        self.calendar = calendar

    @classmethod
    def from_config(cls, config: Any) -> DeadlinePlanner:
        return cls(
            [policy_from_config(p) for p in config.sla.policies], calendar_from_config(config)
        )

    def plan(self, facts: MentionFacts, created_at: datetime) -> Deadline | None:
        policy = select_policy(self.policies, facts)
        if policy is None:
            return None
        return compute_deadline(policy, self.calendar, created_at)

    def plan_follow_up(self, facts: MentionFacts, written_at: datetime) -> Deadline | None:
        """The deadline of a customer's follow-up after a response (a new clock)."""
        policy = select_policy(self.policies, facts)
        if policy is None:
            return None
        return compute_next_deadline(policy, self.calendar, written_at)

    def policy_named(self, name: str | None) -> Policy | None:
        return next((policy for policy in self.policies if policy.name == name), None)

    def moments(self, policy_name: str | None, started_at: datetime,
                deadline_at: datetime) -> list[Moment]:
        """A stored mention's alert moments. A policy since removed from the config still
        leaves its stored deadline, so the breach alone is kept."""
        policy = self.policy_named(policy_name)
        if policy is None:
            return [Moment("breached", 0, as_utc(deadline_at))]
        return alert_moments(policy, self.calendar, started_at, deadline_at)
