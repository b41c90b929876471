"""Which SLA policy applies to a mention, when its response is due, and its state.

Pure functions of their arguments: `now` is passed in, never read. Every deadline keeps
the reasoning that produced it (`Deadline.steps`) so `listener sla explain` can show why a
mention is due when it is, when it warns and when it escalates; the words are written
when first read, as ingest plans deadlines by the thousand and reads none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial

from sla.calendar import MINUTES_PER_DAY, BusinessCalendar, as_utc, format_minutes
from sla.durations import format_duration as _format_duration
from sla.steps import LazySteps

SAME_DAY = "same_day"
# One at-risk threshold: business time left (timedelta) or the fraction of the total left.
AtRiskLevel = timedelta | float
SLA_STATES = ("on_track", "at_risk", "breached", "met", "missed")
format_duration = lru_cache(maxsize=4_096)(_format_duration)
"""Every deadline's steps name the policy's same few durations."""
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class MentionFacts:
    """What policies can match on, already derived from the mention by the pipeline."""

    channel: str
    source: str
    lang: str | None = None
    segment: str | None = None
    priority: str | None = None


@dataclass(frozen=True)
class PolicyMatch:
    """Each non-empty set must contain the mention's value; an empty match takes all."""

    channels: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()

    def matches(self, facts: MentionFacts) -> bool:
        return ((not self.channels or facts.channel in self.channels)
                and (not self.sources or facts.source in self.sources)
                and (not self.languages or facts.lang in self.languages)
                and (not self.segments or facts.segment in self.segments)
                and (not self.priorities or facts.priority in self.priorities))


@dataclass(frozen=True)
class Policy:
    """first_response is "same_day" or a business-time duration; cutoff is minutes since
    midnight (same_day only; None lets closing time act as the cutoff).

    at_risk: the thresholds at which to warn, each the business time or the fraction of
    the total that is left; given as one value, a sequence or None, kept as a tuple (empty:
    no warning). escalate_after: business time past the deadline at which an unanswered
    mention escalates to `escalate_to` (agent ids or team names). next_response: business
    time allowed for a reply when the customer writes again after a response; None applies
    the first_response rule to the follow-up.
    """

    name: str
    match: PolicyMatch
    first_response: str | timedelta
    cutoff: int | None = None
    at_risk: tuple[AtRiskLevel, ...] | Sequence[AtRiskLevel] | AtRiskLevel | None = ()
    escalate_after: timedelta | None = None
    escalate_to: tuple[str, ...] = ()
    next_response: timedelta | None = None

    def __post_init__(self) -> None:
        if isinstance(self.first_response, timedelta):
            if self.first_response <= timedelta(0):
                raise ValueError(f"policy {self.name}: first_response must be positive")
        elif self.first_response != SAME_DAY:
            raise ValueError(f"policy {self.name}: first_response must be {SAME_DAY!r} "
                             f"or a duration, got {self.first_response!r}")
        if self.cutoff is not None and not 0 <= self.cutoff <= MINUTES_PER_DAY:
            raise ValueError(f"policy {self.name}: cutoff must be within the day")
        levels = self.at_risk
        if levels is None:
            levels = ()
        elif isinstance(levels, timedelta | float | int):
            levels = (levels,)
        object.__setattr__(self, "at_risk", tuple(levels))
        for level in self.at_risk:
            if isinstance(level, timedelta) and level < timedelta(0):
                raise ValueError(f"policy {self.name}: at_risk must not be negative")
            if not isinstance(level, timedelta) and not 0 < level <= 1:
                raise ValueError(f"policy {self.name}: at_risk fraction must be in (0, 1]")
        object.__setattr__(self, "escalate_to", tuple(self.escalate_to))
        if self.escalate_after is not None and self.escalate_after <= timedelta(0):
            # Zero would put the escalation on the breach's instant, where only one of
            # the two moments can be alerted.
            raise ValueError(f"policy {self.name}: escalate_after must be positive")
        if self.escalate_to and self.escalate_after is None:
            raise ValueError(f"policy {self.name}: escalate_to needs escalate_after")
        if self.next_response is not None and self.next_response <= timedelta(0):
            raise ValueError(f"policy {self.name}: next_response must be positive")


@dataclass(frozen=True)
class Deadline:
    """When the response is due (aware UTC), when it warns and escalates, and why.

    `warnings` are all at-risk moments, sorted and distinct, none before the clock started
    nor after the deadline; `at_risk_at` is the first of them (the dashboard's amber state).
    Left out, `warnings` is just `at_risk_at`. `escalate_at` is None without escalation.
    `steps` reads as a tuple of lines; computed deadlines write them on first use.
    """

    policy: str
    deadline_at: datetime
    at_risk_at: datetime | None
    steps: Sequence[str]
    warnings: tuple[datetime, ...] | None = None
    escalate_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.warnings is None:
            warnings = () if self.at_risk_at is None else (self.at_risk_at,)
            object.__setattr__(self, "warnings", warnings)
        elif (self.warnings[0] if self.warnings else None) != self.at_risk_at:
            raise ValueError("at_risk_at must be the first of the warnings")


def select_policy(policies: Sequence[Policy], facts: MentionFacts) -> Policy | None:
    """The first policy that matches: config order is priority order."""
    for policy in policies:
        if policy.match.matches(facts):
            return policy
    return None


def compute_deadline(policy: Policy, calendar: BusinessCalendar, created_at: datetime) -> Deadline:
    """The deadline for a mention posted at `created_at` (the source's time, not ours)."""
    return _plan(policy, calendar, as_utc(created_at), False, None)


def compute_next_deadline(policy: Policy, calendar: BusinessCalendar,
                          written_at: datetime) -> Deadline:
    """The deadline for the reply to a customer who wrote again, at `written_at`, after a
    response: `next_response` of business time, or the first_response rule without it."""
    return _plan(policy, calendar, as_utc(written_at), True, None)


def planned_steps(policy: Policy, calendar: BusinessCalendar, started: datetime,
                   follow_up: bool) -> LazySteps:
    """The explanation of the deadline of a clock started at `started` (UTC), written on
    first use by planning again, this time with words. (A `partial`, not a closure: ingest
    makes one per mention, and a closure's cells were more objects for the collector.)"""
    return LazySteps(partial(_explain, policy, calendar, started, follow_up))


def _explain(policy: Policy, calendar: BusinessCalendar, started: datetime,
             follow_up: bool) -> tuple[str, ...]:
    steps: list[str] = []
    _plan(policy, calendar, started, follow_up, steps)
    return tuple(steps)


def warning_moments(
    at_risk: Sequence[AtRiskLevel], calendar: BusinessCalendar, started_at: datetime,
    deadline_at: datetime,
) -> tuple[datetime, ...]:
    """The at-risk moments (UTC) of a clock that started at `started_at`: sorted, distinct,
    within [started_at, deadline_at]."""
    return _warnings(at_risk, calendar, as_utc(started_at), as_utc(deadline_at))


def escalation_moment(policy: Policy, calendar: BusinessCalendar,
                      deadline_at: datetime) -> datetime | None:
    """When an unanswered mention escalates: `escalate_after` of business time past the
    deadline, None when the policy does not escalate.

    Business time, like every other SLA duration: "1h past the breach" for a deadline at
    17:30 with closing at 18:00 is 09:30 the next morning, when the person escalated to is
    at work to act, rather than 18:30 when nobody is. A team that wants wall-clock
    escalation works around the clock, and then its calendar is 00:00-24:00 every day and
    the two readings agree.
    """
    if policy.escalate_after is None:
        return None
    return calendar.add_business_time(deadline_at, policy.escalate_after)


def sla_state(
    deadline_at: datetime | None,
    at_risk_at: datetime | None,
    first_response_at: datetime | None,
    now: datetime,
) -> str | None:
    """One of SLA_STATES; None for a mention no policy covers."""
    if deadline_at is None:
        return None
    if first_response_at is not None:
        return "met" if first_response_at <= deadline_at else "missed"
    if now >= deadline_at:
        return "breached"
    if at_risk_at is not None and now >= at_risk_at:
        return "at_risk"
    return "on_track"


def _plan(policy: Policy, calendar: BusinessCalendar, started: datetime, follow_up: bool,
          steps: list[str] | None) -> Deadline:
    """The deadline of the clock started at `started` (UTC), a follow-up's or the first.

    With `steps`, also writes why into it: one code path for the deadline and its words,
    so the words cannot tell a different story; without, writes nothing and leaves the
    steps to be written on first use.
    """
    if steps is not None:
        when = _when(calendar, started)
        steps += [f"policy {policy.name}", f"next response: the customer wrote again {when}"
                  if follow_up else f"posted {when}"]
    if follow_up and policy.next_response is not None:
        deadline_at = _after_business_time(policy.next_response, calendar, started, steps,
                                           what="next response ")
    else:
        if follow_up and steps is not None:
            steps.append("next response: no next_response set, so the first_response rule "
                         "applies")
        deadline_at = _first_response(policy, calendar, started, steps)
    rule = (policy.next_response if follow_up and policy.next_response is not None
            else policy.first_response)
    # A duration's deadline lies exactly that much business time after the start.
    total = rule if isinstance(rule, timedelta) else None
    warnings = _warnings(policy.at_risk, calendar, started, deadline_at, steps, total)
    escalate_at = escalation_moment(policy, calendar, deadline_at)
    if escalate_at is not None and steps is not None:
        steps.append(_escalation_step(policy, calendar, escalate_at))
    explained = (planned_steps(policy, calendar, started, follow_up) if steps is None
                 else tuple(steps))
    return Deadline(policy.name, deadline_at, warnings[0] if warnings else None, explained,
                    warnings, escalate_at)


def _first_response(policy: Policy, calendar: BusinessCalendar, started: datetime,
                    steps: list[str] | None) -> datetime:
    if isinstance(policy.first_response, timedelta):
        return _after_business_time(policy.first_response, calendar, started, steps)
    return _same_day(policy.cutoff, calendar, started, steps)


def _same_day(cutoff: int | None, calendar: BusinessCalendar, created: datetime,
              steps: list[str] | None) -> datetime:
    day = calendar.local_date(created)
    interval = calendar.utc_interval(day)
    if interval is None:
        if steps is not None:
            steps.append(f"{day} is not a business day ({calendar.day_status(day)})")
    else:
        closes = cutoff_at = interval[1]
        by_cutoff = False
        if cutoff is not None:
            at_cutoff = calendar.at(day, cutoff)
            if at_cutoff <= closes:
                cutoff_at, by_cutoff = at_cutoff, True
            elif steps is not None:
                status = calendar.day_status(day)
                reason = "" if status == "open" else f" ({status})"
                steps.append(f"cutoff {format_minutes(cutoff)} is after closing time "
                             f"{closes.astimezone(calendar.tz):%H:%M}{reason}, so closing "
                             "time acts as the cutoff")
        if steps is not None:
            cutoff_text = (f"cutoff {format_minutes(cutoff)}" if by_cutoff and cutoff is not None
                           else f"closing time {closes.astimezone(calendar.tz):%H:%M}")
        if created < cutoff_at:
            if steps is not None:
                steps.append(f"before {cutoff_text} on a business day")
            return _due_at_closing(calendar, closes, steps)
        if steps is not None:
            steps.append(f"at or after {cutoff_text}")
    day = calendar.next_business_day(day)
    if steps is not None:
        status = calendar.day_status(day)
        steps.append(f"next business day: {_DAY_NAMES[day.weekday()]} {day}"
                     + ("" if status == "open" else f" ({status})"))
    interval = calendar.utc_interval(day)
    assert interval is not None  # next_business_day only returns open days
    return _due_at_closing(calendar, interval[1], steps)


def _due_at_closing(calendar: BusinessCalendar, closes: datetime,
                    steps: list[str] | None) -> datetime:
    if steps is not None:
        local = closes.astimezone(calendar.tz)
        steps.append(f"due at closing time {local:%H:%M} → {_format(local)}")
    return closes


def _after_business_time(
    duration: timedelta, calendar: BusinessCalendar, created: datetime,
    steps: list[str] | None, what: str = "",
) -> datetime:
    deadline_at = calendar.add_business_time(created, duration)
    if steps is not None:
        steps.append(f"{what}counts {format_duration(duration)} of business time")
        clock_starts = calendar.subtract_business_time(deadline_at, duration)
        if clock_starts > created:
            steps.append(f"out of hours: the clock starts at the next opening → "
                         f"{_format(clock_starts.astimezone(calendar.tz))}")
        steps.append(f"due → {_format(deadline_at.astimezone(calendar.tz))}")
    return deadline_at


def _warnings(
    at_risk: Sequence[AtRiskLevel],
    calendar: BusinessCalendar,
    created: datetime,
    deadline_at: datetime,
    steps: list[str] | None = None,
    total: timedelta | None = None,
) -> tuple[datetime, ...]:
    """The at-risk moments, sorted and distinct (thresholds may share one); with `steps`,
    one step per threshold added in time order. `total`, the business time from `created`
    to `deadline_at`, is worked out when not known."""
    if not at_risk:
        return ()
    if total is None:
        total = calendar.business_time_between(created, deadline_at)
    found = []
    for level in at_risk:
        left = level if isinstance(level, timedelta) else total * level
        at_risk_at = (created if left > total
                      else max(created, calendar.subtract_business_time(deadline_at, left)))
        found.append((at_risk_at, level, left))
    if steps is not None:
        steps.extend(_warning_step(calendar, level, left, total, at_risk_at, deadline_at)
                     for at_risk_at, level, left in sorted(found, key=lambda one: one[0]))
    return tuple(sorted({at_risk_at for at_risk_at, _, _ in found}))


def _warning_step(calendar: BusinessCalendar, level: AtRiskLevel, left: timedelta,
                  total: timedelta, at_risk_at: datetime, deadline_at: datetime) -> str:
    if isinstance(level, timedelta):
        text = f"at risk {format_duration(level)} before"
    else:
        text = f"at risk when {level * 100:g}% ({format_duration(left)}) is left"
    if left > total:
        text += f", more than the {format_duration(total)} available: at risk from the start"
    local, due = at_risk_at.astimezone(calendar.tz), deadline_at.astimezone(calendar.tz)
    shown = f"{local:%H:%M}" if local.date() == due.date() else _format(local)
    return f"{text} → {shown}"


def _escalation_step(policy: Policy, calendar: BusinessCalendar, escalate_at: datetime) -> str:
    assert policy.escalate_after is not None
    to = f" to {', '.join(policy.escalate_to)}" if policy.escalate_to else ""
    return (f"escalates{to} {format_duration(policy.escalate_after)} of business time after "
            f"the deadline → {_format(escalate_at.astimezone(calendar.tz))}")


def _when(calendar: BusinessCalendar, moment: datetime) -> str:
    local = moment.astimezone(calendar.tz)
    return f"{local:%Y-%m-%d %H:%M} {calendar.tz.key} ({_DAY_NAMES[local.weekday()]})"


def _format(moment: datetime) -> str:
    """"2026-11-23 18:00 +03:00": the local time with its offset, as people read it."""
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"
