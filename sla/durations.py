"""Parsers for the small time notations used in the config ("2h", "09:00-18:00", "75%").

They raise ValueError with a message that quotes the offending text, so config errors
point at what the user typed rather than at a Python type.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "15m", "2h", "1d" or a combination in that order ("1h30m")."""
    cleaned = text.strip().lower() if isinstance(text, str) else ""
    found = _DURATION.fullmatch(cleaned) if cleaned else None
    if found is None:
        raise ValueError(f"expected a duration like 90s, 15m, 2h or 1d, got {text!r}")
    seconds = sum(
        int(amount) * _UNIT_SECONDS[unit]
        for amount, unit in zip(found.groups(), "dhms", strict=True)
        if amount is not None
    )
    return timedelta(seconds=seconds)


def parse_time_of_day(text: str) -> int:
    """Parse "HH:MM" into minutes since midnight; "24:00" (end of day) is allowed."""
    found = _TIME_OF_DAY.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is not None:
        hours, minutes = int(found[1]), int(found[2])
        if minutes < 60 and (hours < 24 or (hours == 24 and minutes == 0)):
            return hours * 60 + minutes
    raise ValueError(f"expected a time of day like 09:00 or 24:00, got {text!r}")


def parse_hours_range(text: str) -> tuple[int, int]:
    """Parse opening hours "09:00-18:00" into (open, close) minutes; "00:00-24:00" = all day.

    Ranges over midnight are rejected: a day's hours belong to that calendar day.
    """
    parts = text.split("-") if isinstance(text, str) else []
    if len(parts) != 2:
        raise ValueError(f"expected opening hours like 09:00-18:00, got {text!r}")
    opens, closes = (parse_time_of_day(part) for part in parts)
    if opens >= closes:
        raise ValueError(f"opening hours must open before they close, got {text!r}")
    return opens, closes


def parse_at_risk(text: str) -> timedelta | float:
    """Parse an at-risk threshold: a duration left ("1h") or a fraction left ("75%" → 0.75)."""
    found = _PERCENT.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        try:
            return parse_duration(text)
        except ValueError:
            raise ValueError(
                f"expected an at-risk threshold like 1h, 30m or 75%, got {text!r}"
            ) from None
    percent = float(found[1])
    if not 0 < percent <= 100:
        raise ValueError(f"at-risk percentage must be above 0% and at most 100%, got {text!r}")
    return percent / 100


def format_duration(duration: timedelta) -> str:
    """The inverse of parse_duration for display: 5400s → "1h30m", 0 → "0m"."""
    seconds = int(duration.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + ("".join(parts) or "0m")
