from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listener.shifts import Shift

IST = ZoneInfo("Europe/Istanbul")
BERLIN = ZoneInfo("Europe/Berlin")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def at(text: str, tz: ZoneInfo = IST) -> datetime:
    """A wall-clock moment in `tz`; 2026-03-02 is a Monday."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment", "covered"),
    [
        ("mon-fri 09:00-18:00", "2026-03-02 09:00", True),
        ("mon-fri 09:00-18:00", "2026-03-02 08:59:59", False),
        ("mon-fri 09:00-18:00", "2026-03-06 17:59:59", True),
        ("mon-fri 09:00-18:00", "2026-03-06 18:00", False),
        ("mon-fri 09:00-18:00", "2026-03-07 12:00", False),
        ("Monday - Friday 9:00 - 18:00", "2026-03-04 12:00", True),
        ("mon-fri 09:00-18:00, sat 10:00-14:00", "2026-03-07 13:59", True),
        ("mon-fri 09:00-18:00, sat 10:00-14:00", "2026-03-07 14:00", False),
        ("mon-fri 09:00-18:00; sat 10:00-14:00", "2026-03-08 12:00", False),
        ("mon,wed,fri 09:00-13:00", "2026-03-04 10:00", True),
        ("mon,wed,fri 09:00-13:00", "2026-03-03 10:00", False),
        ("mon, wed 09:00-13:00, thu-fri 14:00-15:00", "2026-03-05 14:30", True),
        ("mon, wed 09:00-13:00, thu-fri 14:00-15:00", "2026-03-05 10:00", False),
        ("sat-sun 10:00-16:00", "2026-03-08 10:00", True),
        ("sat-sun 10:00-16:00", "2026-03-06 10:00", False),
        ("fri-mon 10:00-16:00", "2026-03-02 10:00", True),
        ("fri-mon 10:00-16:00", "2026-03-07 10:00", True),
        ("fri-mon 10:00-16:00", "2026-03-03 10:00", False),
        ("wed 00:00-24:00", "2026-03-04 00:00", True),
        ("wed 00:00-24:00", "2026-03-04 23:59:59", True),
        ("wed 00:00-24:00", "2026-03-05 00:00", False),
        ("wed 00:00-24:00", "2026-03-03 23:59:59", False),
        ("sun 12:00-24:00", "2026-03-08 23:59", True),
        ("sun 12:00-24:00", "2026-03-09 00:00", False),
    ],
)
def test_weekly_windows(text: str, moment: str, covered: bool) -> None:
    assert Shift.parse(text, IST).covers(at(moment)) is covered


@pytest.mark.parametrize(
    ("text", "moment", "covered"),
    [
        ("fri 22:00-06:00", "2026-03-06 21:59", False),
        ("fri 22:00-06:00", "2026-03-06 22:00", True),
        ("fri 22:00-06:00", "2026-03-07 05:59", True),
        ("fri 22:00-06:00", "2026-03-07 06:00", False),
        ("fri 22:00-06:00", "2026-03-06 05:00", False),  # Friday morning belongs to thu
        ("fri 22:00-06:00", "2026-03-07 23:00", False),
        ("sun 22:00-06:00", "2026-03-09 03:00", True),  # spills across the week's end
        ("sun 22:00-06:00", "2026-03-02 03:00", True),
        ("sun 22:00-06:00", "2026-03-09 06:00", False),
        ("mon 22:00-06:00", "2026-03-02 03:00", False),
        ("mon-fri 18:00-09:00", "2026-03-07 08:00", True),
        ("mon-fri 18:00-09:00", "2026-03-07 12:00", False),
        ("mon-fri 18:00-09:00", "2026-03-02 08:00", False),
    ],
)
def test_overnight_windows_belong_to_the_start_day(text: str, moment: str, covered: bool) -> None:
    assert Shift.parse(text, IST).covers(at(moment)) is covered


@pytest.mark.parametrize("text", ["daily", "always", "24/7", "Daily", "mon-sun 00:00-24:00"])
def test_whole_week(text: str) -> None:
    shift = Shift.parse(text, IST)
    for hour in range(0, 7 * 24, 5):
        assert shift.covers(at("2026-03-02 00:00") + timedelta(hours=hour, minutes=59))


def test_daily_with_a_window_and_more_parts() -> None:
    shift = Shift.parse("daily 08:00-10:00; sat 20:00-22:00", IST)
    assert shift.covers(at("2026-03-04 09:00"))
    assert shift.covers(at("2026-03-07 21:00"))
    assert not shift.covers(at("2026-03-04 21:00"))


def test_spellings_that_mean_the_same_shift_are_equal() -> None:
    a = Shift.parse("mon-fri 09:00-18:00", IST)
    assert a == Shift.parse("monday-friday 9:00-18:00", IST)
    assert a == Shift.parse("mon,tue,wed,thu,fri 09:00-18:00", IST)
    assert a == Shift.parse("mon-wed 09:00-18:00; thu-fri 09:00-18:00", IST)
    assert a != Shift.parse("mon-fri 09:00-18:00", BERLIN)


def test_moment_in_another_zone_is_converted() -> None:
    shift = Shift.parse("mon-fri 09:00-18:00", IST)
    assert shift.covers(utc("2026-03-02 06:00"))  # 09:00 in Istanbul (UTC+3 all year)
    assert not shift.covers(utc("2026-03-02 05:59"))
    new_york = ZoneInfo("America/New_York")
    assert shift.covers(at("2026-03-02 01:30", new_york))  # 09:30 Istanbul
    assert not shift.covers(at("2026-03-06 10:30", new_york))  # 18:30 Istanbul


def test_istanbul_has_no_dst_so_summer_and_winter_match_utc_plus_3() -> None:
    shift = Shift.parse("mon-fri 09:00-18:00", IST)
    for day in ("2026-01-05", "2026-07-06", "2026-10-26"):
        assert shift.covers(utc(f"{day} 06:00"))
        assert not shift.covers(utc(f"{day} 05:59"))
        assert not shift.covers(utc(f"{day} 15:00"))


def test_berlin_spring_forward_keeps_wall_clock_hours() -> None:
    """2026-03-29 (a Sunday): 02:00 CET jumps to 03:00 CEST."""
    day = Shift.parse("sat-sun 09:00-18:00", BERLIN)
    assert day.covers(utc("2026-03-28 08:00"))  # Sat 09:00 CET
    assert not day.covers(utc("2026-03-29 06:59"))  # Sun 08:59 CEST
    assert day.covers(utc("2026-03-29 07:00"))  # Sun 09:00 CEST
    assert day.covers(utc("2026-03-29 15:59"))
    assert not day.covers(utc("2026-03-29 16:00"))  # Sun 18:00 CEST

    night = Shift.parse("sat 22:00-06:00", BERLIN)
    assert night.covers(utc("2026-03-28 21:00"))  # Sat 22:00 CET
    assert not night.covers(utc("2026-03-28 20:59"))
    assert night.covers(utc("2026-03-29 03:59"))  # Sun 05:59 CEST
    assert not night.covers(utc("2026-03-29 04:00"))  # Sun 06:00 CEST, would be 05:00 in CET

    skipped = Shift.parse("sun 02:00-03:00", BERLIN)
    assert not skipped.covers(utc("2026-03-29 00:59"))  # 01:59 CET
    assert not skipped.covers(utc("2026-03-29 01:00"))  # 03:00 CEST: the hour never happened


def test_berlin_fall_back_covers_the_repeated_hour_twice() -> None:
    shift = Shift.parse("sun 02:00-03:00", BERLIN)
    assert shift.covers(utc("2026-10-25 00:30"))  # 02:30 CEST
    assert shift.covers(utc("2026-10-25 01:30"))  # 02:30 CET
    assert not shift.covers(utc("2026-10-25 02:00"))  # 03:00 CET


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Shift.parse("daily", IST).covers(datetime(2026, 3, 2, 9))


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("mon-fry 9-5", 'unknown day "fry"'),
        ("mon-fri 9-5", 'bad time range "9-5"'),
        ("mon-fri 9am-5pm", 'bad time range "9am-5pm"'),
        ("mon-fri", "no time range"),
        ("09:00-18:00", "no days"),
        ("mon 25:00-26:00", "not a valid time range"),
        ("mon 09:60-10:00", "not a valid time range"),
        ("mon 09:00-24:30", "not a valid time range"),
        ("mon 10:00-10:00", "empty; use 00:00-24:00"),
        ("mon 00:00-00:00", "empty; use 00:00-24:00"),
        ("", "empty part"),
        ("mon-fri 09:00-18:00;", "empty part"),
        ("mon-fri 09:00-18:00 sat 10:00-14:00", "more than a day list"),
        ("daily, sat 10:00-14:00", '"daily" must stand alone'),
        ("mon-daily 09:00-10:00", '"daily" must stand alone'),
        ("weekdays 09:00-18:00", 'unknown day "weekdays"'),
    ],
)
def test_parse_errors_show_the_expected_format(text: str, detail: str) -> None:
    with pytest.raises(ValueError) as error:
        Shift.parse(text, IST)
    message = str(error.value)
    assert message.startswith(f'expected something like "mon-fri 09:00-18:00", got "{text}"')
    assert detail in message


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@given(
    day=st.integers(0, 6),
    start=st.integers(0, 24 * 60 - 1),
    end=st.integers(1, 24 * 60),
    moment=st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1)),
)
def test_one_window_matches_a_calendar_oracle(
    day: int, start: int, end: int, moment: datetime
) -> None:
    """In a zone without DST, covers() must agree with plain datetime arithmetic."""
    if end % (24 * 60) == start and (start, end) != (0, 24 * 60):
        return  # an empty window is a parse error, tested above
    shift = Shift.parse(f"{DAYS[day]} {_hhmm(start)}-{_hhmm(end)}", ZoneInfo("UTC"))
    length = timedelta(minutes=(end - start) % (24 * 60) or 24 * 60)
    expected = False
    for back in (0, 1):  # a window covering `moment` started today or yesterday
        started = moment.date() - timedelta(days=back)
        if started.weekday() == day:
            opens = datetime.combine(started, datetime.min.time()) + timedelta(minutes=start)
            expected |= opens <= moment < opens + length
    assert shift.covers(moment.replace(tzinfo=UTC)) is expected
