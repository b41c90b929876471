"""Business time: when the brand is open, and how much open time lies between two moments.

Opening hours are local wall-clock times in the calendar's zone, so a 09:00 opening stays
09:00 across DST changes. All arithmetic is done on UTC instants: aware datetimes that
share a tzinfo compare by wall clock in Python, which is wrong across a DST change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from sla.durations import parse_hours_range

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
# A calendar with no open day in this many days is treated as broken, not as "wait".
_SEARCH_DAYS = 3 * 366
# Hours of an extra open date whose weekday has none configured (a Saturday campaign).
OPEN_DATE_HOURS = (9 * 60, 18 * 60)
_ZERO = timedelta(0)
_Key = TypeVar("_Key")
_Value = TypeVar("_Value")
_ONE_DAY = timedelta(days=1)


def format_minutes(minutes: int) -> str:
    """Minutes since midnight as "HH:MM" (1440 → "24:00")."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly opening hours in one time zone, minus public holidays and closed dates,
    plus extra open dates.

    `hours` maps weekday (0 = Monday) to (open, close) in minutes since midnight; a
    missing weekday is closed. Half-day holidays (e.g. the eve of a Turkish national
    holiday) close at `half_day_close`, and stay closed if they would open after it.
    `holiday_country` is a `holidays` country code, optionally with a subdivision
    ("DE-BY"). An `open_dates` day is worked whatever else says (a Saturday campaign, a
    holiday the team covers): it has its weekday's hours in full, or OPEN_DATE_HOURS
    when that weekday has none. A date cannot be both open and closed.
    """

    tz: ZoneInfo
    hours: Mapping[int, tuple[int, int]]
    closed_dates: frozenset[date] = frozenset()
    holiday_country: str | None = None
    half_day_close: int = 13 * 60
    open_dates: frozenset[date] = frozenset()
    # year → {date: (category, name)}; filled lazily, one `holidays` lookup per year.
    _holidays_by_year: dict[int, dict[date, tuple[str, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # Pure functions of the fields above, remembered because every deadline walks the
    # same few days again (two DST-aware conversions each); bounded by the days ever
    # asked about, a few hundred a year. day → its open interval in UTC (or None):
    _intervals: _Remembered[date, tuple[datetime, datetime] | None] = field(
        init=False, repr=False, compare=False
    )
    # (day, minute of the day) → `at(day, minute)`: each day's cutoff, again and again.
    _instants: _Remembered[tuple[date, int], datetime] = field(
        init=False, repr=False, compare=False
    )
    # (day, +1 or -1) → the next or previous business day.
    _neighbours: _Remembered[tuple[date, int], date] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_intervals", _Remembered(self._find_utc_interval))
        object.__setattr__(self, "_instants", _Remembered(self._find_instant))
        object.__setattr__(self, "_neighbours", _Remembered(self._find_neighbour))
        if not isinstance(self.tz, ZoneInfo):
            raise TypeError(f"tz must be a zoneinfo.ZoneInfo, got {self.tz!r}")
        hours: dict[int, tuple[int, int]] = {}
        for weekday, (opens, closes) in self.hours.items():
            if weekday not in range(7):
                raise ValueError(f"weekday must be 0 (Monday) .. 6 (Sunday), got {weekday!r}")
            if not 0 <= opens < closes <= MINUTES_PER_DAY:
                raise ValueError(f"invalid opening hours for {WEEKDAYS[weekday]}: "
                                 f"{opens!r}-{closes!r} minutes")
            hours[weekday] = (opens, closes)
        object.__setattr__(self, "hours", MappingProxyType(hours))
        object.__setattr__(self, "closed_dates", frozenset(self.closed_dates))
        object.__setattr__(self, "open_dates", frozenset(self.open_dates))
        both = sorted(self.closed_dates & self.open_dates)
        if both:
            raise ValueError(f"{', '.join(map(str, both))} cannot be both open and closed")
        if not 0 <= self.half_day_close <= MINUTES_PER_DAY:
            raise ValueError(f"half_day_close must be within the day, got {self.half_day_close}")
        if self.holiday_country is not None:
            self._country_holidays(categories=("public",), years=())

    def __hash__(self) -> int:
        return hash((self.tz, tuple(sorted(self.hours.items())), self.closed_dates,
                     self.holiday_country, self.half_day_close, self.open_dates))

    @classmethod
    def from_config(
        cls,
        timezone: str,
        hours: Mapping[str, str],
        holiday_country: str | None = None,
        closed: Iterable[date | str] = (),
        open_dates: Iterable[date | str] = (),
    ) -> BusinessCalendar:
        """Build from config values: {"mon": "09:00-18:00", ...} and ISO dates."""
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r}") from None
        weekly: dict[int, tuple[int, int]] = {}
        for key, text in hours.items():
            name = key.strip().lower()
            if name not in WEEKDAYS:
                raise ValueError(f"unknown weekday {key!r}, expected one of {', '.join(WEEKDAYS)}")
            weekly[WEEKDAYS.index(name)] = parse_hours_range(text)
        return cls(tz, weekly, frozenset(_as_date(day) for day in closed), holiday_country,
                   open_dates=frozenset(_as_date(day) for day in open_dates))

    # -- one day -----------------------------------------------------------------------

    def open_interval(self, day: date) -> tuple[datetime, datetime] | None:
        """(opening, closing) of `day` as aware datetimes in the calendar's zone, or None.

        Convert to UTC before testing them for equality: a local time in the repeated
        autumn hour never compares equal to a datetime in another zone (PEP 495).
        """
        interval = self._intervals[day]
        if interval is None:
            return None
        return interval[0].astimezone(self.tz), interval[1].astimezone(self.tz)

    def day_status(self, day: date) -> str:
        """Why `day` is open, short or closed, in words (for `listener sla explain`)."""
        hours, status = self._schedule(day)
        if hours is not None and self._intervals[day] is None:
            return "open hours skipped by a DST change"
        return status

    def utc_interval(self, day: date) -> tuple[datetime, datetime] | None:
        """(opening, closing) of `day` as UTC instants, or None when closed all day."""
        return self._intervals[day]

    def local_date(self, moment: datetime) -> date:
        """The calendar day, in the calendar's zone, on which the UTC `moment` falls."""
        return moment.astimezone(self.tz).date()

    def is_business_day(self, day: date) -> bool:
        return self._intervals[day] is not None

    def at(self, day: date, minute: int) -> datetime:
        """The instant (UTC) at which the local wall clock first shows `minute` on `day`.

        "24:00" is the next midnight. A wall time skipped by a DST change maps to the
        moment of the jump; a repeated one maps to its first occurrence.
        """
        return self._instants[(day, minute)]

    def _find_instant(self, day_and_minute: tuple[date, int]) -> datetime:
        day, minute = day_and_minute
        if minute == MINUTES_PER_DAY:
            day, minute = day + _ONE_DAY, 0
        wall = datetime.combine(day, time(minute // 60, minute % 60))
        instant = wall.replace(tzinfo=self.tz).astimezone(UTC)
        if instant.astimezone(self.tz).replace(tzinfo=None) == wall:
            return instant
        return self._end_of_gap(wall)

    def is_open_throughout(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end] lies within one day's opening hours."""
        start, end = as_utc(start), as_utc(end)
        interval = self._intervals[self.local_date(start)]
        return interval is not None and interval[0] <= start and end < interval[1]

    def next_business_day(self, day: date) -> date:
        """First open day strictly after `day`."""
        return self._neighbours[(day, 1)]

    def previous_business_day(self, day: date) -> date:
        """Last open day strictly before `day`."""
        return self._neighbours[(day, -1)]

    # -- spans of business time ------------------------------------------------------------

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant (UTC) by which `duration` of open time has passed since start.

        Out of hours the clock waits for the next opening; a duration that uses up a
        day's hours exactly ends at that day's closing, not the next opening.
        """
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        cursor = as_utc(start)
        if not duration:
            return cursor
        remaining = duration
        day = self.local_date(cursor)
        while True:
            interval = self._intervals[day]
            if interval is not None and interval[1] > cursor:
                cursor = max(cursor, interval[0])
                available = interval[1] - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
            day = self.next_business_day(day)

    def subtract_business_time(self, end: datetime, duration: timedelta) -> datetime:
        """The latest instant (UTC) from which `duration` of open time remains until `end`.

        Used for "at risk when 1h is left": with a deadline at Monday 10:00 and opening at
        09:00, 1h left is reached at Monday's opening, not at Friday's closing (from then
        until Monday 09:00, 1h is also left; the alert belongs where someone can act).
        """
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        cursor = as_utc(end)
        if not duration:
            return cursor
        remaining = duration
        day = self.local_date(cursor)
        while True:
            interval = self._intervals[day]
            if interval is not None and interval[0] < cursor:
                cursor = min(cursor, interval[1])
                available = cursor - interval[0]
                if remaining <= available:
                    return cursor - remaining
                remaining -= available
            day = self.previous_business_day(day)

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Open time within [a, b); zero if b is not after a."""
        start, end = as_utc(a), as_utc(b)
        total = _ZERO
        if end <= start:
            return total
        day, last = self.local_date(start), self.local_date(end)
        while day <= last:
            interval = self._intervals[day]
            if interval is not None:
                overlap = min(interval[1], end) - max(interval[0], start)
                if overlap > _ZERO:
                    total += overlap
            day += _ONE_DAY
        return total

    # -- internals ------------------------------------------------------------------------

    def _schedule(self, day: date) -> tuple[tuple[int, int] | None, str]:
        """Local (open, close) minutes for `day`, or None, with the reason in words."""
        if day in self.open_dates:
            return self.hours.get(day.weekday(), OPEN_DATE_HOURS), "extra open date"
        if day in self.closed_dates:
            return None, "closed date"
        holiday = self._holiday(day)
        if holiday is not None and holiday[0] == "public":
            return None, f"public holiday: {holiday[1]}"
        hours = self.hours.get(day.weekday())
        if hours is None:
            return None, "weekend/no hours"
        if holiday is None:
            return hours, "open"
        opens, closes = hours[0], min(hours[1], self.half_day_close)
        if opens >= closes:
            return None, (f"half day: {holiday[1]} (closed, would open after "
                          f"{format_minutes(self.half_day_close)})")
        return (opens, closes), f"half day: {holiday[1]}"

    def _find_utc_interval(self, day: date) -> tuple[datetime, datetime] | None:
        hours = self._schedule(day)[0]
        if hours is None:
            return None
        opens, closes = self.at(day, hours[0]), self.at(day, hours[1])
        # Hours lying wholly inside a DST gap (e.g. 02:15-02:45) never happen that day.
        return (opens, closes) if opens < closes else None

    def _end_of_gap(self, wall: datetime) -> datetime:
        """First instant whose local wall time is at or after `wall`, which a DST jump skips."""
        candidates = (wall.replace(tzinfo=self.tz, fold=fold).astimezone(UTC) for fold in (0, 1))
        before, after = sorted(candidates)
        while after - before > timedelta(seconds=1):
            middle = before + (after - before) / 2
            if middle.astimezone(self.tz).replace(tzinfo=None) >= wall:
                after = middle
            else:
                before = middle
        return after.replace(microsecond=0)

    def _find_neighbour(self, day_and_step: tuple[date, int]) -> date:
        day, step = day_and_step
        for offset in range(1, _SEARCH_DAYS + 1):
            candidate = day + timedelta(days=step * offset)
            if self._intervals[candidate] is not None:
                return candidate
        raise ValueError("calendar has no business days")

    def _holiday(self, day: date) -> tuple[str, str] | None:
        if self.holiday_country is None:
            return None
        year = self._holidays_by_year.get(day.year)
        if year is None:
            year = self._load_holidays(day.year)
            self._holidays_by_year[day.year] = year
        return year.get(day)

    def _load_holidays(self, year: int) -> dict[date, tuple[str, str]]:
        found: dict[date, tuple[str, str]] = {}
        public = self._country_holidays(categories=("public",), years=year)
        if "half_day" in public.supported_categories:
            half_days = self._country_holidays(categories=("half_day",), years=year)
            found.update((day, ("half_day", name)) for day, name in half_days.items())
        found.update((day, ("public", name)) for day, name in public.items())
        return found

    def _country_holidays(self, **options: object) -> holidays.HolidayBase:
        country, _, subdivision = (self.holiday_country or "").partition("-")
        try:
            return holidays.country_holidays(country, subdiv=subdivision or None, **options)
        except NotImplementedError as error:
            raise ValueError(f"unknown holiday country {self.holiday_country!r}: {error}") from None


class _Remembered(dict[_Key, _Value]):
    """A pure function's answers by argument, each found by `find` when first asked for."""

    def __init__(self, find: Callable[[_Key], _Value]):
        super().__init__()
        self._find = find

    def __missing__(self, key: _Key) -> _Value:
        value = self[key] = self._find(key)
        return value


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive datetimes are refused rather than guessed."""
    if moment.tzinfo is UTC:
        return moment  # the usual case, and astimezone(UTC) would return it unchanged
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {moment!r}")
    return moment.astimezone(UTC)


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise ValueError(f"expected a date like 2026-12-31, got {value!r}") from None
