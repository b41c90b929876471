from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla.durations import (
    format_duration,
    parse_at_risk,
    parse_duration,
    parse_hours_range,
    parse_time_of_day,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 2H ", timedelta(hours=2)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "x", "2", "h", "2x", "-1h", "1.5h", "30m1h", "2 h", "1h 30m"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match=r"expected a duration like 90s, 15m, 2h or 1d, got '"):
        parse_duration(text)


def test_parse_duration_error_quotes_the_text():
    with pytest.raises(ValueError) as raised:
        parse_duration("x")
    assert str(raised.value) == "expected a duration like 90s, 15m, 2h or 1d, got 'x'"


@given(st.integers(min_value=0, max_value=10 * 86400))
def test_format_duration_round_trips(seconds):
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [("00:00", 0), ("09:00", 540), ("9:30", 570), ("18:00", 1080), ("23:59", 1439),
     ("24:00", 1440)],
)
def test_parse_time_of_day(text, expected):
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["", "9", "09:60", "24:01", "25:00", "09-00", "9:5", "x"])
def test_parse_time_of_day_rejects(text):
    with pytest.raises(ValueError, match="expected a time of day"):
        parse_time_of_day(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("09:00-18:00", (540, 1080)), ("00:00-24:00", (0, 1440)), ("10:00-14:00", (600, 840))],
)
def test_parse_hours_range(text, expected):
    assert parse_hours_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("18:00-09:00", "open before they close"),
        ("09:00-09:00", "open before they close"),
        ("22:00-02:00", "open before they close"),
        ("09:00", "expected opening hours"),
        ("09:00-12:00-13:00", "expected opening hours"),
        ("09:00-25:00", "expected a time of day"),
    ],
)
def test_parse_hours_range_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_hours_range(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1h", timedelta(hours=1)), ("30m", timedelta(minutes=30)), ("75%", 0.75),
     ("100%", 1.0), ("12.5%", 0.125), (" 50 % ", 0.5)],
)
def test_parse_at_risk(text, expected):
    assert parse_at_risk(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("0%", "above 0%"), ("150%", "at most 100%"), ("x", "like 1h, 30m or 75%"),
     ("%", "like 1h, 30m or 75%")],
)
def test_parse_at_risk_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_at_risk(text)
