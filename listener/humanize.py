"""Durations as people read them: the dashboard and alerts show time left, not timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta


def short_duration(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return "<1m"


def time_left(
    deadline_at: datetime | None, now: datetime, first_response_at: datetime | None = None
) -> str:
    if deadline_at is None:
        return "no deadline"
    if first_response_at is not None:
        gap = deadline_at - first_response_at
        word = "early" if gap >= timedelta(0) else "late"
        return f"answered {short_duration(gap)} {word}"
    left = deadline_at - now
    if left >= timedelta(0):
        return f"{short_duration(left)} left"
    return f"overdue by {short_duration(left)}"
