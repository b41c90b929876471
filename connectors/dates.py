"""Dates as web pages print them, read into aware UTC datetimes.

Complaint sites and forums rarely print ISO 8601: they print "23 Kasım 2026 14:05",
"23.11.2026", "2 saat önce" or "yesterday". `parse_date` tries each shape in turn and
returns None when nothing fits, so the caller can fall back to the fetch time and say so.

Conventions, chosen for the Turkish and European sites this mostly reads:
- numeric dates are day first (`03/04/2026` is 3 April);
- a time without an offset is local time in the source's `timezone`;
- a date without a year is the latest such date not more than a day in the future;
- relative phrases ("3 hours ago") are measured back from `now`, the poll time.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

MONTHS = {
    # Turkish, folded to ASCII (see `fold`): full names and the usual abbreviations
    "ocak": 1, "oca": 1, "subat": 2, "sub": 2, "mart": 3, "nisan": 4, "nis": 4,
    "mayis": 5, "haziran": 6, "haz": 6, "temmuz": 7, "tem": 7, "agustos": 8, "agu": 8,
    "ags": 8, "eylul": 9, "eyl": 9, "ekim": 10, "eki": 10, "kasim": 11, "kas": 11,
    "aralik": 12, "ara": 12,
    # English
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11,
    "nov": 11, "december": 12, "dec": 12,
}
UNITS = {
    "saniye": "seconds", "sn": "seconds", "dakika": "minutes", "dk": "minutes",
    "saat": "hours", "sa": "hours", "gun": "days", "hafta": "weeks", "ay": "months",
    "yil": "years",
    "second": "seconds", "sec": "seconds", "s": "seconds", "minute": "minutes",
    "min": "minutes", "m": "minutes", "hour": "hours", "hr": "hours", "h": "hours",
    "day": "days", "d": "days", "week": "weeks", "w": "weeks", "month": "months",
    "year": "years", "yr": "years", "y": "years",
}
UNIT_LENGTH = {
    "seconds": timedelta(seconds=1), "minutes": timedelta(minutes=1),
    "hours": timedelta(hours=1), "days": timedelta(days=1), "weeks": timedelta(weeks=1),
    "months": timedelta(days=30), "years": timedelta(days=365),
}
WORD_NUMBERS = {"bir": 1, "a": 1, "an": 1, "one": 1}
FOLD = str.maketrans("ıışğüöçâîû", "iisguocaiu")

EPOCH = re.compile(r"^\d{10}(?:\d{3})?$")
RFC2822 = re.compile(r"^(?:[A-Za-z]{3}, )?\d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}")
NUMERIC = re.compile(r"(?<!\d)(\d{1,2})[./-](\d{1,2})[./-](\d{4})(?!\d)")
DAY_MONTH = re.compile(r"(?<!\d)(\d{1,2})\.?\s+([a-z]+)\.?,?(?:\s+(\d{4})(?!\d))?")
MONTH_DAY = re.compile(r"\b([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?!\d),?(?:\s+(\d{4})(?!\d))?")
CLOCK = re.compile(
    r"(?<!\d)(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([ap])\.?m\.?\b)?"
    r"(?:\s*(?:(?:utc|gmt)?\s*([+-]\d{2}):?(\d{2})\b|(z|utc|gmt)\b))?",
    re.IGNORECASE,
)
AGO = re.compile(r"(?<![a-z])(\d+|bir|an|a|one)\s*([a-z]+)\.?\s+(?:once|ago)\b")
JUST_NOW = re.compile(r"\b(?:az once|simdi|just now|right now)\b")
YESTERDAY = re.compile(r"\b(?:dun|yesterday)\b")
TODAY = re.compile(r"\b(?:bugun|today)\b")


def fold(text: str) -> str:
    """Lower case without Turkish or other accents, so "KASIM", "Kasım" and "kasim" meet:
    `str.lower` alone turns "I" into "i" and "İ" into "i̇", neither of which is "ı"."""
    lowered = text.replace("İ", "i").replace("I", "i").lower().translate(FOLD)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def parse_date(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    """The moment `text` names, in UTC; None when no known shape fits."""
    cleaned = " ".join(text.split())
    if not cleaned:
        return None
    for reader in (_epoch, _iso, _rfc2822, _numeric, _named_month, _relative):
        found = reader(cleaned, now, zone)
        if found is not None:
            return found.astimezone(UTC)
    return None


def _epoch(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    """Unix seconds or milliseconds, as `data-timestamp` attributes carry them."""
    if not EPOCH.match(text):
        return None
    seconds = int(text) / (1000 if len(text) == 13 else 1)
    return datetime.fromtimestamp(seconds, UTC)


def _iso(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=zone)


def _rfc2822(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    """"Mon, 23 Nov 2026 09:15:00 +0300", the e-mail and RSS shape, offset included."""
    if not RFC2822.match(text):
        return None
    try:
        found = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return found if found.tzinfo else found.replace(tzinfo=zone)


def _numeric(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    """dd.mm.yyyy, dd/mm/yyyy or dd-mm-yyyy, optionally followed by a clock time."""
    match = NUMERIC.search(text)
    if not match:
        return None
    day, month, year = (int(g) for g in match.groups())
    return _at(year, month, day, text[match.end():], zone)


def _named_month(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    """"23 Kasım 2026 14:05", "23 Kas", "November 23, 2026 2:05 PM", "Nov 23"."""
    folded = fold(text)
    for pattern, day_group, month_group in ((DAY_MONTH, 1, 2), (MONTH_DAY, 2, 1)):
        for match in pattern.finditer(folded):
            month = MONTHS.get(match.group(month_group))
            if month is None:
                continue
            day, year = int(match.group(day_group)), match.group(3)
            rest = folded[match.end():]
            if year is not None:
                return _at(int(year), month, day, rest, zone)
            return _without_year(month, day, rest, now, zone)
    return None


def _relative(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    """"2 saat önce", "5 dk önce", "3 hours ago", "an hour ago", "dün 14:05", "yesterday",
    "bugün 09:30", "az önce", "just now"."""
    folded = fold(text)
    if JUST_NOW.search(folded):
        return now
    ago = AGO.search(folded)
    if ago:
        unit = UNITS.get(ago.group(2)) or UNITS.get(ago.group(2).rstrip("s"))
        if unit is not None:
            amount = WORD_NUMBERS.get(ago.group(1)) or int(ago.group(1))
            return now - amount * UNIT_LENGTH[unit]
    for pattern, days_back in ((YESTERDAY, 1), (TODAY, 0)):
        match = pattern.search(folded)
        if match:
            local = now.astimezone(zone)
            clock = _clock(folded[match.end():])
            if clock is None:
                return now - timedelta(days=days_back)
            return _combine(local.date() - timedelta(days=days_back), clock, zone)
    return None


def _without_year(month: int, day: int, rest: str, now: datetime,
                  zone: tzinfo) -> datetime | None:
    """Sites print "23 Kasım 14:05" for this year's dates: the latest such date that is not
    more than a day ahead of `now` (so "31 Aralık" read on 2 January is last year's)."""
    year = now.astimezone(zone).year
    found = _at(year, month, day, rest, zone)
    if found is not None and found > now + timedelta(days=1):
        found = _at(year - 1, month, day, rest, zone)
    return found


def _at(year: int, month: int, day: int, rest: str, zone: tzinfo) -> datetime | None:
    """The date with the first clock time found after it (midnight when none), in the
    clock's own offset when it prints one ("14:05 +0300", "14:05 UTC")."""
    try:
        day_part = date(year, month, day)
    except ValueError:
        return None
    return _combine(day_part, _clock(rest) or time(0, 0), zone)


def _clock(text: str) -> time | None:
    """The first clock time in `text`; its tzinfo is set only when an offset is printed."""
    match = CLOCK.search(text)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3) or 0)
    meridiem = (match.group(4) or "").lower()
    if meridiem == "p" and hour < 12:
        hour += 12
    elif meridiem == "a" and hour == 12:
        hour = 0
    try:
        return time(hour, minute, second, tzinfo=_offset(match))
    except ValueError:
        return None


def _offset(match: re.Match[str]) -> tzinfo | None:
    if match.group(7):
        return UTC
    if match.group(5) is None:
        return None
    hours, minutes = int(match.group(5)), int(match.group(6))
    sign = -1 if match.group(5).startswith("-") else 1
    return timezone(sign * timedelta(hours=abs(hours), minutes=minutes))


def _combine(day: date, clock: time, zone: tzinfo) -> datetime:
    """`zone` unless the clock printed its own offset."""
    return datetime.combine(day, clock.replace(tzinfo=None), tzinfo=clock.tzinfo or zone)
