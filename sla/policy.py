"""Which SLA policy applies to a mention, when its first response is due, and its state.

Pure functions of their arguments: `now` is passed in, never read. Every deadline keeps
the reasoning that produced it (`Deadline.steps`) so `listener sla explain` can show why a
mention is due when it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sla.calendar import MINUTES_PER_DAY, BusinessCalendar, as_utc, format_minutes
from sla.durations import format_duration

SAME_DAY = "same_day"
SLA_STATES = ("on_track", "at_risk", "breached", "met", "missed")
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
        pairs = (
            (self.channels, facts.channel),
            (self.sources, facts.source),
            (self.languages, facts.lang),
            (self.segments, facts.segment),
            (self.priorities, facts.priority),
        )
        return all(not allowed or value in allowed for allowed, value in pairs)


@dataclass(frozen=True)
class Policy:
    """first_response is "same_day" or a business-time duration; cutoff is minutes since
    midnight (same_day only; None lets closing time act as the cutoff); at_risk is the
    business time or the fraction of the total that is left when the mention turns at risk.
    """

    name: str
    match: PolicyMatch
    first_response: str | timedelta
    cutoff: int | None = None
    at_risk: timedelta | float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.first_response, timedelta):
            if self.first_response <= timedelta(0):
                raise ValueError(f"policy {self.name}: first_response must be positive")
        elif self.first_response != SAME_DAY:
            raise ValueError(f"policy {self.name}: first_response must be {SAME_DAY!r} "
                             f"or a duration, got {self.first_response!r}")
        if self.cutoff is not None and not 0 <= self.cutoff <= MINUTES_PER_DAY:
            raise ValueError(f"policy {self.name}: cutoff must be within the day")
        if isinstance(self.at_risk, timedelta) and self.at_risk < timedelta(0):
            raise ValueError(f"policy {self.name}: at_risk must not be negative")
        if isinstance(self.at_risk, float | int) and not 0 < self.at_risk <= 1:
            raise ValueError(f"policy {self.name}: at_risk fraction must be in (0, 1]")


@dataclass(frozen=True)
class Deadline:
    """When the first response is due (aware UTC), when it turns at risk, and why."""

    policy: str
    deadline_at: datetime
    at_risk_at: datetime | None
    steps: tuple[str, ...]


def select_policy(policies: Sequence[Policy], facts: MentionFacts) -> Policy | None:
    """The first policy that matches: config order is priority order."""
    return next((policy for policy in policies if policy.match.matches(facts)), None)


def compute_deadline(policy: Policy, calendar: BusinessCalendar, created_at: datetime) -> Deadline:
    """The deadline for a mention posted at `created_at` (the source's time, not ours)."""
    created = as_utc(created_at)
    local = created.astimezone(calendar.tz)
    steps = [f"policy {policy.name}",
             f"posted {local:%Y-%m-%d %H:%M} {calendar.tz.key} ({_DAY_NAMES[local.weekday()]})"]
    if isinstance(policy.first_response, timedelta):
        deadline_at = _after_business_time(policy.first_response, calendar, created, steps)
    else:
        deadline_at = _same_day(policy.cutoff, calendar, created, steps)
    at_risk_at = _at_risk(policy.at_risk, calendar, created, deadline_at, steps)
    return Deadline(policy.name, deadline_at, at_risk_at, tuple(steps))


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


def _same_day(
    cutoff: int | None, calendar: BusinessCalendar, created: datetime, steps: list[str]
) -> datetime:
    day = created.astimezone(calendar.tz).date()
    interval = calendar.open_interval(day)
    if interval is None:
        steps.append(f"{day} is not a business day ({calendar.day_status(day)})")
    else:
        closes = interval[1]
        cutoff_at, cutoff_text = closes.astimezone(UTC), f"closing time {closes:%H:%M}"
        if cutoff is not None:
            if calendar.at(day, cutoff) <= cutoff_at:
                cutoff_at = calendar.at(day, cutoff)
                cutoff_text = f"cutoff {format_minutes(cutoff)}"
            else:
                status = calendar.day_status(day)
                reason = "" if status == "open" else f" ({status})"
                steps.append(f"cutoff {format_minutes(cutoff)} is after closing time "
                             f"{closes:%H:%M}{reason}, so closing time acts as the cutoff")
        if created < cutoff_at:
            steps.append(f"before {cutoff_text} on a business day")
            return _due_at_closing(closes, steps)
        steps.append(f"at or after {cutoff_text}")
    day = calendar.next_business_day(day)
    status = calendar.day_status(day)
    steps.append(f"next business day: {_DAY_NAMES[day.weekday()]} {day}"
                 + ("" if status == "open" else f" ({status})"))
    interval = calendar.open_interval(day)
    assert interval is not None  # next_business_day only returns open days
    return _due_at_closing(interval[1], steps)


def _due_at_closing(closes: datetime, steps: list[str]) -> datetime:
    steps.append(f"due at closing time {closes:%H:%M} → {_format(closes)}")
    return closes.astimezone(UTC)


def _after_business_time(
    duration: timedelta, calendar: BusinessCalendar, created: datetime, steps: list[str]
) -> datetime:
    steps.append(f"counts {format_duration(duration)} of business time")
    deadline_at = calendar.add_business_time(created, duration)
    clock_starts = calendar.subtract_business_time(deadline_at, duration)
    if clock_starts > created:
        steps.append(f"out of hours: the clock starts at the next opening → "
                     f"{_format(clock_starts.astimezone(calendar.tz))}")
    steps.append(f"due → {_format(deadline_at.astimezone(calendar.tz))}")
    return deadline_at


def _at_risk(
    at_risk: timedelta | float | None,
    calendar: BusinessCalendar,
    created: datetime,
    deadline_at: datetime,
    steps: list[str],
) -> datetime | None:
    if at_risk is None:
        return None
    total = calendar.business_time_between(created, deadline_at)
    if isinstance(at_risk, timedelta):
        left, text = at_risk, f"at risk {format_duration(at_risk)} before"
    else:
        left = total * at_risk
        text = f"at risk when {at_risk * 100:g}% ({format_duration(left)}) is left"
    if left > total:
        at_risk_at = created
        text += f", more than the {format_duration(total)} available: at risk from the start"
    else:
        at_risk_at = max(created, calendar.subtract_business_time(deadline_at, left))
    local, due = at_risk_at.astimezone(calendar.tz), deadline_at.astimezone(calendar.tz)
    shown = f"{local:%H:%M}" if local.date() == due.date() else _format(local)
    steps.append(f"{text} → {shown}")
    return at_risk_at


def _format(moment: datetime) -> str:
    """"2026-11-23 18:00 +03:00": the local time with its offset, as people read it."""
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"
