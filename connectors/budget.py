"""Pacing a metered source (X's monthly reads, YouTube's daily units) so its budget lasts."""

from __future__ import annotations

from datetime import timedelta


def paced_interval(base: timedelta, until_reset: timedelta, remaining: int, reads: int,
                   polls: int) -> timedelta:
    """Long enough that `remaining` lasts until the reset at the reads per poll spent so
    far this period, never shorter than the configured `base`; a spent budget waits for
    the reset."""
    if remaining <= 0:
        return until_reset
    per_poll = max(1.0, reads / polls) if polls else 1.0
    return max(base, min(until_reset, until_reset * (per_poll / remaining)))
