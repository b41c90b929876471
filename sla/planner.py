"""Which policy applies to a mention and when it is due, from the validated config."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sla.calendar import BusinessCalendar
from sla.policy import Deadline, MentionFacts, Policy, PolicyMatch, compute_deadline, select_policy


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
    )


def calendar_from_config(config: Any) -> BusinessCalendar:
    holidays = config.calendar.holidays
    return BusinessCalendar.from_config(
        config.timezone,
        config.calendar.hours,
        holiday_country=holidays.country if holidays else None,
        closed=config.calendar.closed,
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
