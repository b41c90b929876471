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
LAST_OF_HOUR = timedelta(hours=1) - timedelta(microseconds=1)
SHARE_MINUTE_AFTER = 2
SHARE_HOUR_AFTER = 4
"""A span's answer is shared from its n-th mention on; the ones before are computed."""
MEMO_SIZE = 4_096
"""Hours and minutes remembered; mentions arrive roughly in time order, so recent ones
suffice."""
_SEEN = object()  # computed directly: the span is not shared (yet)
_UNSHARED = object()


class DeadlinePlanner:
    """Picks the policy and plans the deadline, memoised per (policy, rule, hour), or
    per minute in an hour that needs it.

    Inside one span of time with no opening, closing, cutoff or warning boundary in it, a
    deadline either stays put (the mention waits for the next opening, or same-day's
    closing) or moves second for second with the posting time (business time is
    running). The memo computes a span's first and last instant; if they agree, or differ
    by exactly the time between them while the whole span is open, every mention in that
    span gets that answer, shifted where it moves. The span is the UTC hour; an hour with
    a boundary inside is tried a minute at a time, and a minute with one is computed
    directly. The first mentions of a span are also computed directly (one of a minute,
    three of an hour): sharing costs two extra computations, which a quiet span (history
    scattered over a year) never pays back. Only the moments are shared: each answer is
    explained for its own posting time (the words can name its seconds).
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
        # The UTC hour, then the UTC minute, is the key: cheaper than dividing the time
        # since EPOCH. Most hours hold one answer (opening, closing and cutoffs fall on
        # the hour); an hour with a boundary inside is shared a minute at a time.
        hour = posted.replace(minute=0, second=0, microsecond=0)
        entry = self._entry((id(policy), follow_up, hour), policy, hour, LAST_OF_HOUR,
                            compute, SHARE_HOUR_AFTER)
        if entry is _UNSHARED:
            minute = posted.replace(second=0, microsecond=0)
            entry = self._entry((id(policy), follow_up, minute), policy, minute,
                                LAST_OF_MINUTE, compute, SHARE_MINUTE_AFTER)
        if entry is _SEEN or entry is _UNSHARED:
            return compute(policy, self.calendar, posted)
        first, moves_from = entry  # type: ignore[misc]
        steps = planned_steps(policy, self.calendar, posted, follow_up)
        return _shifted(first, ZERO if moves_from is None else posted - moves_from, steps)

    def _entry(self, key: tuple[int, bool, datetime], policy: Policy, start: datetime,
               last: timedelta,
               compute: Callable[[Policy, BusinessCalendar, datetime], Deadline],
               share_after: int) -> object:
        """The memo's answer for the span from `start` to `start + last`: _SEEN until the
        span has had `share_after` mentions (sharing costs two extra computations, which
        a quiet span never pays back), then what `_share` found."""
        entry = self._memo.get(key)
        if entry is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            entry = 0
        if type(entry) is int:  # mentions seen so far
            if entry + 1 < share_after:
                self._memo[key] = entry + 1
                return _SEEN
            entry = self._memo[key] = self._share(policy, start, last, compute)
        return entry

    def _share(self, policy: Policy, start: datetime, last: timedelta,
               compute: Callable[[Policy, BusinessCalendar, datetime], Deadline]) -> object:
        """(the span's first answer, the instant from which it moves with the posting
        time, else None), or _UNSHARED when no single answer holds for the whole span."""
        first = compute(policy, self.calendar, start)
        final = compute(policy, self.calendar, start + last)
        if _moments(final) == _moments(first):
            return first, None
        if (_moments(final) == _moments(_shifted(first, last, first.steps))
                and self.calendar.is_open_throughout(start, start + last)):
            return first, start
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
