"""Which policy applies to a mention and when it is due, from the validated config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
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
    planned_steps,
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


ZERO = timedelta(0)
MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST_OF_MINUTE = MINUTE - timedelta(microseconds=1)
MEMO_SIZE = 4_096
"""Minutes remembered; mentions arrive roughly in time order, so recent ones suffice."""
_SEEN = object()
_UNSHARED = object()


class DeadlinePlanner:
    """Picks the policy and plans the deadline, memoised per (policy, rule, minute).

    Inside one minute a deadline either stays put (the mention waits for the next
    opening, or same-day's closing) or moves second for second with the posting time
    (business time is running). The memo computes a minute's first and last instant; if
    they agree, or differ by exactly the time between them while the whole minute is
    open, every mention in that minute gets that answer, shifted where it moves. Anything
    else (a cutoff, a closing or a warning falling inside the minute) is computed
    directly. The first mention of a minute is also computed directly: a minute seen
    once is not worth two extra computations. Only the moments are shared: each answer
    is explained for its own posting time (the words can name its seconds).
    """

    def __init__(self, policies: Sequence[Policy], calendar: BusinessCalendar):
        self.policies = tuple(policies)
        self.calendar = calendar
        self._memo: dict[tuple[int, bool, int], object] = {}  # (policy, rule, minute)

    @classmethod
    def from_config(cls, config: Any) -> DeadlinePlanner:
        return cls(
            [policy_from_config(p) for p in config.sla.policies], calendar_from_config(config)
        )

    def plan(self, facts: MentionFacts, created_at: datetime) -> Deadline | None:
        policy = select_policy(self.policies, facts)
        if policy is None:
            return None
        return self._memoised(policy, False, created_at, compute_deadline)

    def plan_follow_up(self, facts: MentionFacts, written_at: datetime) -> Deadline | None:
        """The deadline of a customer's follow-up after a response (a new clock)."""
        policy = select_policy(self.policies, facts)
        if policy is None:
            return None
        return self._memoised(policy, True, written_at, compute_next_deadline)

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

    def _memoised(self, policy: Policy, follow_up: bool, posted: datetime,
                  compute: Callable[[Policy, BusinessCalendar, datetime], Deadline]
                  ) -> Deadline:
        posted = as_utc(posted)
        # The UTC minute itself is the key: cheaper than dividing the time since EPOCH.
        minute = posted.replace(second=0, microsecond=0)
        key = (id(policy), follow_up, minute)
        entry = self._memo.get(key)
        if entry is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = _SEEN
            return compute(policy, self.calendar, posted)
        if entry is _SEEN:
            entry = self._memo[key] = self._share(policy, minute, compute)
        if entry is _UNSHARED:
            return compute(policy, self.calendar, posted)
        first, moves_from = entry  # type: ignore[misc]
        steps = planned_steps(policy, self.calendar, posted, follow_up)
        return _shifted(first, ZERO if moves_from is None else posted - moves_from, steps)

    def _share(self, policy: Policy, minute: datetime,
               compute: Callable[[Policy, BusinessCalendar, datetime], Deadline]) -> object:
        """(the minute's first answer, the minute when it moves with the posting time,
        else None), or _UNSHARED when no single answer holds for the whole minute."""
        first = compute(policy, self.calendar, minute)
        last = compute(policy, self.calendar, minute + LAST_OF_MINUTE)
        if _moments(last) == _moments(first):
            return first, None
        if (_moments(last) == _moments(_shifted(first, LAST_OF_MINUTE, first.steps))
                and self.calendar.is_open_throughout(minute, minute + LAST_OF_MINUTE)):
            return first, minute
        return _UNSHARED


def _moments(deadline: Deadline) -> tuple[object, ...]:
    """Everything in a deadline but its steps, which are written for each posting time."""
    return (deadline.deadline_at, deadline.at_risk_at, deadline.warnings, deadline.escalate_at)


def _shifted(deadline: Deadline, by: timedelta, steps: Sequence[str]) -> Deadline:
    """`deadline` with every moment in it `by` later, explained by `steps`.

    Built without `Deadline.__init__`: the moments of a checked deadline moved together
    still satisfy its checks, and the frozen dataclass's init was most of a memo hit."""
    warnings = deadline.warnings
    assert warnings is not None
    shifted = _new_deadline(Deadline)
    fields = shifted.__dict__
    fields["policy"] = deadline.policy
    fields["steps"] = steps
    if by:
        fields["deadline_at"] = deadline.deadline_at + by
        fields["at_risk_at"] = None if deadline.at_risk_at is None else deadline.at_risk_at + by
        fields["warnings"] = tuple([moment + by for moment in warnings])
        fields["escalate_at"] = (None if deadline.escalate_at is None
                                 else deadline.escalate_at + by)
    else:
        fields["deadline_at"] = deadline.deadline_at
        fields["at_risk_at"] = deadline.at_risk_at
        fields["warnings"] = warnings
        fields["escalate_at"] = deadline.escalate_at
    return shifted


_new_deadline = object.__new__
