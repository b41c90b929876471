"""The moments at which an unanswered mention is alerted, and which of them are due now.

A mention's clock yields a short, sorted list: its at-risk warnings, the breach at the
deadline and, when the policy escalates, the escalation. The engine keeps only a count of
how many it has handled, so the list must come out the same every time it is rebuilt
from the same policy, calendar and stored times, which is why it is computed here, purely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sla.calendar import BusinessCalendar, as_utc
from sla.policy import Deadline, Policy, escalation_moment, warning_moments

MomentKind = Literal["at_risk", "breached", "escalated"]
# At one instant a warning comes before the breach, the breach before the escalation.
KINDS: tuple[MomentKind, ...] = ("at_risk", "breached", "escalated")


@dataclass(frozen=True)
class Moment:
    """One alert moment (aware UTC); `index` numbers the at-risk warnings 0..n-1 in time
    order and is 0 for the breach and the escalation, so (kind, index) names a moment."""

    kind: MomentKind
    index: int
    at: datetime


def alert_moments(policy: Policy, calendar: BusinessCalendar, started_at: datetime,
                  deadline_at: datetime) -> list[Moment]:
    """The moments of a clock that started at `started_at` (the mention's created_at, or
    when the customer wrote again) and is due at the stored `deadline_at`, sorted by time.

    Built from the stored deadline rather than a recomputed one, so the alerts stay
    consistent with what the dashboard shows even after the config changed.
    """
    warnings = warning_moments(policy.at_risk, calendar, started_at, deadline_at)
    return _sorted(warnings, as_utc(deadline_at), escalation_moment(policy, calendar, deadline_at))


def deadline_moments(deadline: Deadline) -> list[Moment]:
    """The same moments, read off a freshly computed Deadline."""
    assert deadline.warnings is not None  # filled in by Deadline.__post_init__
    return _sorted(deadline.warnings, deadline.deadline_at, deadline.escalate_at)


def due_moments(moments: Sequence[Moment], fired: int,
                now: datetime) -> tuple[list[Moment], int, datetime | None]:
    """(to_alert, fired_after, next_at) for `moments` of which the first `fired` are handled.

    When several moments have passed at once (a restart, a backfill, a late ingest), only
    the latest is alerted: a warning is pointless once the mention is breached. The others
    count as handled all the same, so none of them is ever alerted later. `next_at` is the
    first moment still to come, None when all are handled.
    """
    handled = min(max(fired, 0), len(moments))
    passed = handled
    while passed < len(moments) and moments[passed].at <= now:
        passed += 1
    to_alert = [moments[passed - 1]] if passed > handled else []
    next_at = moments[passed].at if passed < len(moments) else None
    return to_alert, passed, next_at


def _sorted(warnings: Sequence[datetime], deadline_at: datetime,
            escalate_at: datetime | None) -> list[Moment]:
    moments = [Moment("at_risk", index, at) for index, at in enumerate(sorted(set(warnings)))]
    moments.append(Moment("breached", 0, deadline_at))
    if escalate_at is not None:
        moments.append(Moment("escalated", 0, escalate_at))
    return sorted(moments, key=lambda m: (m.at, KINDS.index(m.kind), m.index))
