"""Business-time arithmetic, checked by examples and against a minute-by-minute oracle.

The oracle knows nothing of intervals: it steps through UTC minutes (stepping an aware
local datetime would step its wall clock) and asks, for each, whether the local
wall clock is inside that day's hours. Generated hours avoid 01:00-04:00, where DST
changes make "inside the hours" ambiguous; those cases have explicit tests below.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import WEEKDAYS, BusinessCalendar

IST = ZoneInfo("Europe/Istanbul")
BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = timedelta(minutes=1)
WEEKDAY_HOURS = {day: "09:00-18:00" for day in WEEKDAYS[:5]}


def istanbul(**overrides) -> BusinessCalendar:
    config = {"timezone": "Europe/Istanbul", "hours": {**WEEKDAY_HOURS, "sat": "10:00-14:00"},
              "holiday_country": "TR", "closed": ["2026-12-31"]}
    return BusinessCalendar.from_config(**{**config, **overrides})


# -- oracle ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarSpec:
    tz: ZoneInfo
    hours: tuple[tuple[int, int, int], ...]  # (weekday, open, close)
    closed: frozenset[date]
    country: str | None
    open_dates: frozenset[date] = frozenset()

    def build(self) -> BusinessCalendar:
        weekly = {weekday: (opens, closes) for weekday, opens, closes in self.hours}
        return BusinessCalendar(self.tz, weekly, self.closed, self.country,
                                open_dates=self.open_dates)


@functools.lru_cache(maxsize=64)
def _holidays(country: str, category: str, year: int) -> holidays.HolidayBase:
    country_holidays = holidays.country_holidays(country, years=year)
    if category not in country_holidays.supported_categories:
        return {}
    return holidays.country_holidays(country, categories=(category,), years=year)


@functools.lru_cache(maxsize=4096)
def oracle_hours(spec: CalendarSpec, day: date) -> tuple[int, int] | None:
    """Local (open, close) minutes of `day` by the plain rules of the spec."""
    weekly = next(((o, c) for weekday, o, c in spec.hours if weekday == day.weekday()), None)
    if day in spec.open_dates:  # worked whatever the week, the holidays or `closed` say
        return weekly or (9 * 60, 18 * 60)
    if day in spec.closed:
        return None
    if spec.country and day in _holidays(spec.country, "public", day.year):
        return None
    hours = next(((o, c) for weekday, o, c in spec.hours if weekday == day.weekday()), None)
    if hours is None:
        return None
    if spec.country and day in _holidays(spec.country, "half_day", day.year):
        hours = (hours[0], min(hours[1], 13 * 60))
    return hours if hours[0] < hours[1] else None


def _next_midnight(spec: CalendarSpec, local: datetime) -> datetime:
    return datetime.combine(local.date() + timedelta(days=1), time(), spec.tz).astimezone(UTC)


def _minute_state(spec: CalendarSpec, instant: datetime) -> str:
    """"open", "later" (closed now, may open later today) or "done" (closed all day)."""
    local = instant.astimezone(spec.tz)
    hours = oracle_hours(spec, local.date())
    minute = local.hour * 60 + local.minute
    if hours is None or minute >= hours[1]:
        return "done"
    return "open" if minute >= hours[0] else "later"


def oracle_add(spec: CalendarSpec, start: datetime, minutes: int) -> datetime:
    cursor, remaining = start.astimezone(UTC), minutes
    while remaining:
        state = _minute_state(spec, cursor)
        if state == "done":
            cursor = _next_midnight(spec, cursor.astimezone(spec.tz))
            continue
        remaining -= state == "open"
        cursor += MINUTE
    return cursor


def oracle_between(spec: CalendarSpec, a: datetime, b: datetime) -> timedelta:
    cursor, minutes, b = a.astimezone(UTC), 0, b.astimezone(UTC)
    while cursor < b:
        state = _minute_state(spec, cursor)
        if state == "done":
            cursor = _next_midnight(spec, cursor.astimezone(spec.tz))
            continue
        minutes += state == "open"
        cursor += MINUTE
    return minutes * MINUTE


def oracle_subtract(spec: CalendarSpec, end: datetime, minutes: int, floor: datetime) -> datetime:
    """Walking back from `end`, where `minutes` of open time have been seen (or `floor`)."""
    cursor, remaining = end.astimezone(UTC), minutes
    while remaining and cursor > floor:
        remaining -= _minute_state(spec, cursor - MINUTE) == "open"
        cursor -= MINUTE
    return max(cursor, floor)


# -- strategies -----------------------------------------------------------------------------

# Quarter hours outside 01:00-04:00, so no opening or closing falls in a DST change.
SAFE_MINUTES = [m for m in range(0, 24 * 60 + 1, 15) if not 60 <= m <= 240]
FIRST = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def calendar_specs(draw) -> CalendarSpec:
    tz, country = draw(st.sampled_from([(IST, "TR"), (IST, "TR"), (IST, None), (BERLIN, "DE"),
                                        (BERLIN, None), (ZoneInfo("America/New_York"), "US")]))
    weekdays = draw(st.sets(st.integers(0, 6), min_size=1))
    hours = []
    for weekday in sorted(weekdays):
        opens, closes = sorted(draw(st.lists(st.sampled_from(SAFE_MINUTES), min_size=2,
                                             max_size=2, unique=True)))
        hours.append((weekday, opens, closes))
    return CalendarSpec(tz, tuple(hours), frozenset(), country)


# DST changes (EU, US) and Turkish half-day eves, which uniform draws would rarely hit.
TRICKY_DAYS = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1),
               date(2027, 3, 28), date(2027, 10, 31), date(2026, 3, 19), date(2026, 5, 26),
               date(2026, 10, 28), date(2026, 12, 24), date(2026, 12, 31)]


def minutes_in_range():
    """Moments over two years, biased towards tricky days and quarter hours (boundaries)."""
    days = st.integers(0, 2 * 365) | st.builds(
        lambda day, offset: (day - FIRST.date()).days + offset,
        st.sampled_from(TRICKY_DAYS), st.integers(-3, 1))
    minutes = st.integers(0, 24 * 60 - 1) | st.sampled_from(SAFE_MINUTES[:-1])
    return st.builds(lambda d, m: FIRST + timedelta(days=d, minutes=m), days, minutes)


@st.composite
def spec_and_start(draw):
    spec = draw(calendar_specs())
    start = draw(minutes_in_range())
    offsets = draw(st.sets(st.integers(-2, 30), max_size=8))
    closed = frozenset(start.date() + timedelta(days=offset) for offset in offsets)
    # Extra open dates near the start (holidays, weekends, but never a closed date).
    offsets = draw(st.sets(st.integers(-2, 30), max_size=4)) - offsets
    open_dates = frozenset(start.date() + timedelta(days=offset) for offset in offsets)
    return CalendarSpec(spec.tz, spec.hours, closed, spec.country, open_dates), start


def weekly_minutes(spec: CalendarSpec) -> int:
    return sum(closes - opens for _, opens, closes in spec.hours)


# -- properties against the oracle ---------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_add_business_time_matches_oracle(data):
    spec, start = data.draw(spec_and_start())
    minutes = data.draw(st.integers(0, min(3 * 24 * 60, 2 * weekly_minutes(spec))))
    calendar = spec.build()
    in_other_zone = start.astimezone(ZoneInfo("Asia/Tokyo"))
    result = calendar.add_business_time(in_other_zone, minutes * MINUTE)
    assert result == oracle_add(spec, start, minutes)
    assert result.tzinfo is UTC
    assert calendar.business_time_between(start, result) == minutes * MINUTE


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_business_time_between_matches_oracle(data):
    spec, start = data.draw(spec_and_start())
    end = start + data.draw(st.integers(-60, 12 * 24 * 60)) * MINUTE
    calendar = spec.build()
    assert calendar.business_time_between(start, end) == oracle_between(spec, start, end)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_subtract_business_time_matches_oracle(data):
    spec, end = data.draw(spec_and_start())
    minutes = data.draw(st.integers(0, min(2 * 24 * 60, weekly_minutes(spec))))
    calendar = spec.build()
    floor = end - 30 * 24 * 60 * MINUTE
    result = max(calendar.subtract_business_time(end, minutes * MINUTE), floor)
    assert result == oracle_subtract(spec, end, minutes, floor)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_open_interval_and_next_business_day_match_oracle(data):
    spec, start = data.draw(spec_and_start())
    calendar = spec.build()
    day = start.date()
    interval = calendar.open_interval(day)
    hours = oracle_hours(spec, day)
    if hours is None:
        assert interval is None
    else:
        assert interval is not None
        opens = datetime.combine(day, time(hours[0] // 60, hours[0] % 60), spec.tz)
        assert interval[0] == opens and interval[0].tzinfo == spec.tz
        length = interval[1].astimezone(UTC) - interval[0].astimezone(UTC)
        assert length == oracle_between(spec, *interval)
        assert calendar.business_time_between(*interval) == length
    following = calendar.next_business_day(day)
    assert oracle_hours(spec, following) is not None
    skipped = (following - day).days - 1
    assert all(oracle_hours(spec, day + timedelta(days=i + 1)) is None for i in range(skipped))


# -- examples -------------------------------------------------------------------------------


def test_from_config_reads_hours_holidays_and_closed_dates():
    calendar = istanbul()
    assert calendar.tz == IST
    assert calendar.hours[0] == (540, 1080)
    assert calendar.hours[5] == (600, 840)
    assert 6 not in calendar.hours
    assert calendar.closed_dates == frozenset({date(2026, 12, 31)})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"hours": {"monday": "09:00-18:00"}}, "unknown weekday"),
        ({"hours": {"mon": "18:00-09:00"}}, "open before they close"),
        ({"holiday_country": "XX"}, "unknown holiday country"),
        ({"closed": ["31.12.2026"]}, "expected a date like 2026-12-31"),
    ],
)
def test_from_config_rejects(overrides, message):
    with pytest.raises(ValueError, match=message):
        istanbul(**overrides)


@pytest.mark.parametrize(
    ("day", "status", "hours"),
    [
        (date(2026, 11, 23), "open", ("09:00", "18:00")),
        (date(2026, 11, 28), "open", ("10:00", "14:00")),
        (date(2026, 11, 29), "weekend/no hours", None),
        (date(2026, 10, 29), "public holiday: Republic Day", None),
        (date(2026, 10, 28), "half day: Republic Day (from 1pm)", ("09:00", "13:00")),
        (date(2026, 12, 31), "closed date", None),
        (date(2027, 1, 1), "public holiday: New Year's Day", None),
    ],
)
def test_day_status_and_open_interval(day, status, hours):
    calendar = istanbul()
    assert calendar.day_status(day) == status
    interval = calendar.open_interval(day)
    if hours is None:
        assert interval is None
    else:
        assert interval is not None
        assert tuple(f"{moment:%H:%M}" for moment in interval) == hours
        assert all(moment.date() == day and moment.tzinfo == IST for moment in interval)


def test_half_day_that_would_open_after_one_is_closed():
    calendar = istanbul(hours={"wed": "14:00-20:00"})
    assert calendar.open_interval(date(2026, 10, 28)) is None
    assert calendar.day_status(date(2026, 10, 28)).startswith("half day: Republic Day")
    assert calendar.next_business_day(date(2026, 10, 21)) == date(2026, 11, 4)


def test_closing_at_24_00_is_next_midnight():
    calendar = istanbul(hours={"mon": "20:00-24:00"})
    opens, closes = calendar.open_interval(date(2026, 11, 23))
    assert closes == datetime(2026, 11, 24, tzinfo=IST)
    assert closes - opens == timedelta(hours=4)


def test_next_business_day_skips_holiday_closed_date_and_sunday():
    calendar = istanbul()
    assert calendar.next_business_day(date(2026, 10, 28)) == date(2026, 10, 30)
    assert calendar.next_business_day(date(2026, 12, 30)) == date(2027, 1, 2)
    assert calendar.next_business_day(date(2027, 1, 2)) == date(2027, 1, 4)
    assert calendar.previous_business_day(date(2027, 1, 4)) == date(2027, 1, 2)


def test_calendar_without_business_days_gives_up():
    calendar = BusinessCalendar.from_config("UTC", {})
    with pytest.raises(ValueError, match="calendar has no business days"):
        calendar.next_business_day(date(2026, 1, 1))
    with pytest.raises(ValueError, match="calendar has no business days"):
        calendar.add_business_time(datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1))
    assert calendar.business_time_between(
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)) == timedelta(0)


def test_add_business_time_waits_for_opening_and_returns_utc():
    calendar = istanbul()
    friday_evening = datetime(2026, 11, 27, 17, 30, tzinfo=IST)
    result = calendar.add_business_time(friday_evening, timedelta(hours=2))
    assert result == datetime(2026, 11, 28, 11, 30, tzinfo=IST)
    assert result.tzinfo is UTC


def test_add_business_time_ending_at_closing_stays_at_closing():
    calendar = istanbul()
    start = datetime(2026, 11, 23, 17, tzinfo=IST)
    assert calendar.add_business_time(start, timedelta(hours=1)) == datetime(
        2026, 11, 23, 18, tzinfo=IST)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware datetime"):
        istanbul().add_business_time(datetime(2026, 11, 23, 10), timedelta(hours=1))


def test_hours_are_local_wall_clock_across_dst():
    calendar = BusinessCalendar.from_config(
        "Europe/Berlin", {**WEEKDAY_HOURS, "sun": "00:00-24:00"})
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)
    assert calendar.business_time_between(*calendar.open_interval(spring)) == timedelta(hours=23)
    assert calendar.business_time_between(*calendar.open_interval(autumn)) == timedelta(hours=25)
    friday = datetime(2026, 3, 27, 17, tzinfo=BERLIN)
    monday = calendar.add_business_time(friday, timedelta(hours=25))
    assert monday == datetime(2026, 3, 30, 10, tzinfo=BERLIN)
    assert monday == datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_opening_inside_the_spring_gap_opens_when_clocks_jump():
    calendar = BusinessCalendar.from_config("Europe/Berlin", {"sun": "02:30-12:00"})
    opens, closes = calendar.open_interval(date(2026, 3, 29))
    assert opens == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert (opens.hour, opens.minute) == (3, 0)
    assert closes.astimezone(UTC) - opens.astimezone(UTC) == timedelta(hours=9)


def test_hours_wholly_inside_the_spring_gap_do_not_happen():
    calendar = BusinessCalendar.from_config("Europe/Berlin", {"sun": "02:15-02:45"})
    assert calendar.open_interval(date(2026, 3, 29)) is None
    assert calendar.next_business_day(date(2026, 3, 28)) == date(2026, 4, 5)


def test_opening_in_the_repeated_autumn_hour_uses_its_first_occurrence():
    calendar = BusinessCalendar.from_config("Europe/Berlin", {"sun": "02:30-12:00"})
    opens, closes = calendar.open_interval(date(2026, 10, 25))
    # Ambiguous local times never compare equal across zones (PEP 495), so go via UTC.
    assert opens.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert closes.astimezone(UTC) - opens.astimezone(UTC) == timedelta(hours=10, minutes=30)
    assert calendar.business_time_between(opens, closes) == timedelta(hours=10, minutes=30)


def test_subtract_business_time_prefers_the_opening_over_the_previous_close():
    calendar = istanbul()
    monday_ten = datetime(2026, 11, 30, 10, tzinfo=IST)
    assert calendar.subtract_business_time(monday_ten, timedelta(hours=1)) == datetime(
        2026, 11, 30, 9, tzinfo=IST)
    assert calendar.subtract_business_time(monday_ten, timedelta(hours=2)) == datetime(
        2026, 11, 28, 13, tzinfo=IST)


def test_calendar_is_hashable_and_hours_are_read_only():
    calendar = istanbul()
    assert hash(calendar) == hash(istanbul())
    assert calendar == istanbul()
    with pytest.raises(TypeError):
        calendar.hours[6] = (0, 60)


def test_half_days_ignored_where_the_country_has_none():
    calendar = BusinessCalendar.from_config("Europe/Berlin", WEEKDAY_HOURS, "DE")
    assert calendar.day_status(date(2026, 12, 25)) == "public holiday: Christmas Day"
    assert calendar.day_status(date(2026, 12, 24)) == "open"


# -- extra open dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        pytest.param(date(2026, 11, 28), ("10:00", "14:00"), id="saturday-keeps-its-hours"),
        pytest.param(date(2026, 11, 29), ("09:00", "18:00"), id="sunday-without-hours"),
        pytest.param(date(2026, 10, 29), ("09:00", "18:00"), id="public-holiday"),
        pytest.param(date(2026, 10, 28), ("09:00", "18:00"), id="half-day-in-full"),
    ],
)
def test_an_extra_open_date_is_worked(day, hours):
    calendar = istanbul(open_dates=[day.isoformat()])
    assert calendar.day_status(day) == "extra open date"
    assert tuple(f"{moment:%H:%M}" for moment in calendar.open_interval(day)) == hours


def test_a_sunday_campaign_catches_the_friday_evening_clock():
    calendar = istanbul(hours=WEEKDAY_HOURS, open_dates=["2026-11-29"])
    friday_evening = datetime(2026, 11, 27, 17, 30, tzinfo=IST)
    assert calendar.next_business_day(date(2026, 11, 27)) == date(2026, 11, 29)
    assert calendar.add_business_time(friday_evening, timedelta(hours=2)) == datetime(
        2026, 11, 29, 10, 30, tzinfo=IST)
    monday_ten = datetime(2026, 11, 30, 10, tzinfo=IST)
    assert calendar.subtract_business_time(monday_ten, timedelta(hours=2)) == datetime(
        2026, 11, 29, 17, tzinfo=IST)
    assert calendar.business_time_between(friday_evening, monday_ten) == timedelta(
        hours=10, minutes=30)


def test_a_date_both_open_and_closed_is_refused():
    with pytest.raises(ValueError, match="2026-12-31 cannot be both open and closed"):
        istanbul(open_dates=["2026-12-31"])
    with pytest.raises(ValueError, match="expected a date like 2026-12-31"):
        istanbul(open_dates=["28.11.2026"])


def test_open_dates_are_part_of_the_calendars_identity():
    campaign = istanbul(open_dates=["2026-11-29"])
    assert campaign != istanbul()
    assert hash(campaign) == hash(istanbul(open_dates=["2026-11-29"]))
