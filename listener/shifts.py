"""Agent shifts: weekly on-duty windows in wall-clock local time.

Grammar (case-insensitive, spaces around "-" and "," are ignored)::

    shift  := part ((";" | ",") part)*
    part   := days " " window  |  "daily" | "always" | "24/7"  [" " window]
    days   := item ("," item)*
    item   := day | day "-" day                 (ranges wrap: "fri-mon", "sat-sun")
    day    := mon | tue | ... | sun             (full names like "monday" work too)
    window := HH:MM "-" HH:MM                   (H:MM allowed; end may be 24:00)

The comma is unambiguous: a comma right after a time (``18:00,``) ends a part,
any other comma joins days in a list. So ``"mon,wed,fri 09:00-13:00, sat
10:00-14:00"`` is two parts. ``"daily"``/``"always"``/``"24/7"`` alone mean every
day 00:00-24:00; they must stand alone in their part (end it with ";" if more
follow). A window whose end is not after its start (``22:00-06:00``) is an
overnight window: it belongs to the start day and spills into the next morning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

EXAMPLE = "mon-fri 09:00-18:00"
DAY_MINUTES = 24 * 60
WEEK_SECONDS = 7 * DAY_MINUTES * 60

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {name: i for names in (_DAYS, _FULL_DAYS) for i, name in enumerate(names)}
_WHOLE_WEEK = frozenset({"daily", "always", "24/7"})
_PART_BREAK = re.compile(r"(?<=\d:\d\d)\s*,|;")
_WINDOW = re.compile(r"(\d{1,2}):(\d\d)-(\d{1,2}):(\d\d)")


@dataclass(frozen=True)
class Window:
    """One on-duty stretch, as minute-of-week start (Monday 00:00 = 0) and length.

    Keeping start + length instead of start + end makes overnight and
    Sunday-into-Monday windows plain modular arithmetic.
    """

    start: int
    minutes: int

    def contains(self, second_of_week: int) -> bool:
        return (second_of_week - self.start * 60) % WEEK_SECONDS < self.minutes * 60


@dataclass(frozen=True)
class Shift:
    """Weekly windows in one time zone; see the module docstring for the syntax."""

    windows: tuple[Window, ...]
    tz: ZoneInfo
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo) -> Shift:
        parts = _PART_BREAK.split(text.strip().lower())
        windows = {w for part in parts for w in _parse_part(part.strip(), text)}
        return cls(tuple(sorted(windows, key=lambda w: (w.start, w.minutes))), tz, text)

    def covers(self, moment: datetime) -> bool:
        """True if `moment` falls in a window, read on the shift zone's wall clock.

        Wall-clock reading is what people mean by "09:00-18:00": on a DST day the
        shift still starts at 09:00 local, and a skipped hour simply never occurs.
        """
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"Shift.covers needs an aware datetime, got naive {moment}")
        local = moment.astimezone(self.tz)
        second = local.weekday() * 86400 + local.hour * 3600 + local.minute * 60 + local.second
        return any(w.contains(second) for w in self.windows)

    def next_change(self, moment: datetime) -> datetime:
        """The first window start or end after `moment` (in UTC), on the wall clock.

        Routing re-runs at these moments: a starting shift brings capacity for the
        backlog, an ending one hands work off. A wall time skipped by DST resolves to
        just after the jump, which is still after the change.
        """
        local = moment.astimezone(self.tz)
        monday = local.date() - timedelta(days=local.weekday())
        after = moment.astimezone(UTC)
        best: datetime | None = None
        for week in (0, 1):
            for window in self.windows:
                for minute in (window.start, window.start + window.minutes):
                    day, minute_of_day = divmod(minute, DAY_MINUTES)
                    wall = datetime.combine(
                        monday + timedelta(days=7 * week + day),
                        time(minute_of_day // 60, minute_of_day % 60), self.tz)
                    at = wall.astimezone(UTC)
                    if at > after and (best is None or at < best):
                        best = at
        assert best is not None, "a parsed shift has at least one window"
        return best

    def __str__(self) -> str:
        return f"{self.text} ({self.tz.key})"


def _fail(detail: str, text: str) -> ValueError:
    return ValueError(f'expected something like "{EXAMPLE}", got "{text}": {detail}')


def _parse_part(part: str, text: str) -> list[Window]:
    if not part:
        raise _fail("empty part", text)
    tokens = re.sub(r"\s*([-,])\s*", r"\1", part).split()
    if len(tokens) > 2:
        raise _fail(f'"{part}" has more than a day list and one time range', text)
    if _WINDOW.fullmatch(tokens[0]):
        raise _fail(f'"{part}" has no days before its time range', text)
    if tokens[0] in _WHOLE_WEEK:
        days, (start, minutes) = range(7), (0, DAY_MINUTES)
        if len(tokens) == 2:
            start, minutes = _parse_window(tokens[1], text)
    else:
        days = _parse_days(tokens[0], text)
        if len(tokens) == 1:
            raise _fail(f'"{part}" has no time range HH:MM-HH:MM', text)
        start, minutes = _parse_window(tokens[1], text)
    return [Window(day * DAY_MINUTES + start, minutes) for day in days]


def _parse_days(spec: str, text: str) -> list[int]:
    days: list[int] = []
    for item in spec.split(","):
        first, _, last = item.partition("-")
        if keyword := {first, last} & _WHOLE_WEEK:
            raise _fail(f'"{keyword.pop()}" must stand alone; end its part with ";"', text)
        a, b = _day(first, text), _day(last or first, text)
        days.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    return days


def _day(name: str, text: str) -> int:
    try:
        return _DAY_INDEX[name]
    except KeyError:
        raise _fail(f'unknown day "{name}" (use mon, tue, ... sun)', text) from None


def _parse_window(token: str, text: str) -> tuple[int, int]:
    """Return (start minute of day, length in minutes); end <= start means overnight."""
    found = _WINDOW.fullmatch(token)
    if not found:
        raise _fail(f'bad time range "{token}" (use HH:MM-HH:MM)', text)
    h1, m1, h2, m2 = map(int, found.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 > 0):
        raise _fail(f'"{token}" is not a valid time range (00:00 to 24:00)', text)
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if (start, end) == (0, DAY_MINUTES):
        return 0, DAY_MINUTES
    minutes = (end - start) % DAY_MINUTES
    if not minutes:
        raise _fail(f'"{token}" is empty; use 00:00-24:00 for a whole day', text)
    return start, minutes
