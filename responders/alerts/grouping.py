"""Which due alerts go out as one message. A burst (a calendar closing on 300 open
mentions at 18:00) becomes one message per sink instead of 300, which also keeps a chat
webhook under its rate limit. Pure: no clock, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import groupby

from responders.alerts.base import Alert


def group_alerts(alerts: Sequence[Alert], window: timedelta,
                 max_size: int | None = None) -> list[list[Alert]]:
    """Alerts of one sink, split into messages: each message holds alerts created within
    `window` of its first one (and at most `max_size`), oldest first."""
    groups: list[list[Alert]] = []
    for alert in sorted(alerts, key=lambda a: (a.created_at, a.id)):
        current = groups[-1] if groups else None
        if (current is not None and alert.created_at - current[0].created_at <= window
                and (max_size is None or len(current) < max_size)):
            current.append(alert)
        else:
            groups.append([alert])
    return groups


def by_sink(alerts: Sequence[Alert]) -> dict[str, list[Alert]]:
    ordered = sorted(alerts, key=lambda a: a.sink)
    return {sink: list(rows) for sink, rows in groupby(ordered, key=lambda a: a.sink)}
