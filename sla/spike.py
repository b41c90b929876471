"""When negative mentions come far faster than usual for this hour of the week: a crisis,
worth one alert and not one alert per check.

Pure: the counts come in, the decision goes out; the watcher (`sla/spike_watch.py`) does
the reading, the writing and the clock.

- The usual level (`baseline`) is the median count of the same window in earlier weeks,
  so one earlier crisis, or one dead week, barely moves it.
- A spike needs at least `min_count` mentions and `ratio` times the usual level. A usual
  level below half of `min_count` counts as half of `min_count` (the floor): an hour
  that is normally empty (3 am) takes `ratio × min_count / 2` mentions (15 with the
  defaults), not just `min_count`, before anyone is woken.
- Once in a spike, it lasts until the count falls below 80% of the threshold that
  started it (hysteresis): a count wobbling around the threshold is one spike, not many.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

FLOOR_SHARE = 0.5  # an empty baseline counts as min_count × this
END_SHARE = 0.8  # a spike ends below this share of its threshold
WEEK = timedelta(days=7)


def baseline(counts_same_hour_previous_weeks: Sequence[int]) -> float:
    """The usual count for this window: the median of earlier weeks (0 without history)."""
    counts = list(counts_same_hour_previous_weeks)
    return float(statistics.median(counts)) if counts else 0.0


def threshold(baseline: float, ratio: float, min_count: int) -> float:
    """The count at which a spike starts."""
    return max(float(min_count), ratio * max(baseline, min_count * FLOOR_SHARE))


def spike_state(count_now: int, baseline: float, ratio: float, min_count: int) -> bool:
    """Is this count a spike, for a watcher that is not in one yet?"""
    return count_now >= threshold(baseline, ratio, min_count)


def still_in_spike(count_now: int, baseline: float, ratio: float, min_count: int) -> bool:
    """Does a spike that has started go on? Lower than the start, so it ends once."""
    return count_now >= END_SHARE * threshold(baseline, ratio, min_count)


def in_spike(was_in_spike: bool, count_now: int, baseline: float, ratio: float,
             min_count: int) -> bool:
    rule = still_in_spike if was_in_spike else spike_state
    return rule(count_now, baseline, ratio, min_count)


def alert_due(was_in_spike: bool, is_in_spike: bool) -> bool:
    """Alert when a spike starts; never again until it has ended."""
    return is_in_spike and not was_in_spike


def windows(now: datetime, window: timedelta, weeks: int,
            tz: tzinfo = UTC) -> list[tuple[datetime, datetime]]:
    """[now - window, now) first, then the same window 1..`weeks` weeks earlier, all UTC.

    Earlier weeks are stepped back in the team's wall-clock time, so across a daylight
    saving change Monday 10:00 is still compared with Monday 10:00.
    """
    local = now.astimezone(tz)
    spans = []
    for week in range(weeks + 1):
        end = (local - week * WEEK).astimezone(UTC)  # aware arithmetic is wall-clock time
        spans.append((end - window, end))
    return spans
