"""Deadline computations per second over random policies and calendars.

    .venv/bin/python bench/deadlines.py [--computations 100000] [--seed 1]

Random calendars (time zones with and without DST, weekly hours, Turkish or German
public holidays, closed dates) and random policies (same-day with or without cutoff,
business-time durations, at-risk levels, escalation, next-response), each planned for
mentions posted in time order: an ingest's worth within two hours (many a minute for
each policy, as at 10,000 mentions/s), then the same count scattered over a year.

Printed, all in the same run: `DeadlinePlanner.plan` (memoised per policy and hour, or minute)
against the pure `compute_deadline` (no memo; both share the calendar's per-day
cache), the pure functions again with every explanation read (as `listener sla explain`
does; ingest never reads them, so they are written on first use), and a trivial baseline:
`astimezone` plus a `timedelta` for the same count.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sla.calendar import BusinessCalendar
from sla.planner import DeadlinePlanner
from sla.policy import MentionFacts, Policy, PolicyMatch, compute_deadline

ZONES = ("Europe/Istanbul", "Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo")
START = datetime(2026, 1, 1, tzinfo=UTC)
INGEST_SPAN = timedelta(hours=2)
YEAR = timedelta(days=365)


def random_calendar(rng: random.Random) -> BusinessCalendar:
    opens = rng.choice((0, 8 * 60, 9 * 60, 9 * 60 + 30))
    closes = rng.choice((17 * 60, 18 * 60, 22 * 60, 24 * 60))
    days = rng.choice((range(5), range(6), range(7)))
    hours = {day: (opens, closes) for day in days}
    closed = frozenset(date(2026, 1, 1) + timedelta(days=rng.randrange(365)) for _ in range(5))
    return BusinessCalendar(ZoneInfo(rng.choice(ZONES)), hours, closed,
                            holiday_country=rng.choice((None, "TR", "DE")))


def random_policy(rng: random.Random, name: str) -> Policy:
    rule = rng.choice(("same_day", timedelta(minutes=rng.choice((15, 60, 240, 1440, 2880)))))
    return Policy(
        name, PolicyMatch(), rule,
        cutoff=rng.choice((None, 16 * 60)) if rule == "same_day" else None,
        at_risk=rng.choice(((), (timedelta(minutes=30),), (0.25, timedelta(hours=1)))),
        escalate_after=rng.choice((None, timedelta(hours=1))),
        next_response=rng.choice((None, timedelta(hours=2))),
    )


def make_work(count: int, seed: int, span: timedelta) -> list[tuple[int, datetime]]:
    """(planner index, posted at), in time order over `span` from a random start."""
    rng = random.Random(seed)
    start = START + timedelta(minutes=rng.randrange(365 * 24 * 60))
    step = span / count
    return [(rng.randrange(20), start + i * step + rng.random() * step) for i in range(count)]


def planners(seed: int) -> list[DeadlinePlanner]:
    rng = random.Random(seed)
    return [DeadlinePlanner([random_policy(rng, f"p{i}")], random_calendar(rng))
            for i in range(20)]


def rate(count: int, began: float) -> float:
    return count / (time.perf_counter() - began)


def measure(work: list[tuple[int, datetime]], seed: int) -> tuple[float, float, float]:
    """(memoised planner, pure functions, pure with steps read) computations/s on `work`."""
    facts = MentionFacts("twitter", "x")
    memoised = planners(seed)
    began = time.perf_counter()
    for index, posted in work:
        memoised[index].plan(facts, posted)
    with_memo = rate(len(work), began)
    direct = [(p.policies[0], p.calendar) for p in planners(seed)]
    began = time.perf_counter()
    for index, posted in work:
        policy, calendar = direct[index]
        compute_deadline(policy, calendar, posted)
    without = rate(len(work), began)
    direct = [(p.policies[0], p.calendar) for p in planners(seed)]
    began = time.perf_counter()
    for index, posted in work:
        policy, calendar = direct[index]
        len(compute_deadline(policy, calendar, posted).steps)
    return with_memo, without, rate(len(work), began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--computations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = make_work(args.computations, args.seed, INGEST_SPAN)
    began = time.perf_counter()
    zone = ZoneInfo("Europe/Istanbul")
    for _, posted in work:
        posted.astimezone(zone) + timedelta(hours=2)
    baseline = rate(len(work), began)
    print(f"datetime arithmetic baseline:    {baseline:>10,.0f} /s")
    for name, span in (("ingest, 2 hours", INGEST_SPAN), ("scattered, a year", YEAR)):
        work = make_work(args.computations, args.seed, span)
        with_memo, without, explained = measure(work, args.seed)
        print(f"{name + ':':<19} memoised {with_memo:>9,.0f} /s (ratio to baseline "
              f"{with_memo / baseline:.3f}), pure functions {without:>9,.0f} /s "
              f"({without / baseline:.3f}); memo speed-up {with_memo / without:.1f}x; "
              f"steps read {explained:>7,.0f} /s ({explained / baseline:.3f})")


if __name__ == "__main__":
    main()
