"""SLA reports and the lead's team figures: who answered in time, how fast, how busy and
how angry the days were.

Definitions (the reports page states them too):
- compliance = answered within target ÷ (answered + breached unanswered), over the
  mentions whose deadline falls in the range; unanswered ones not yet due are left out;
- first-response time = wall clock from `created_at` to `first_response_at`, over the
  mentions first answered in the range, by the local day of that answer;
- percentiles by the nearest-rank method.

A few slim rows per mention are read with one query per figure family (never one per
mention) and aggregated here in one pass: percentiles need the values themselves, and
days are local days in the configured time zone, which SQLite and PostgreSQL would
bucket differently in SQL.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import OPEN_STATUSES, Author, Mention

DEFAULT_DAYS = 7
MAX_DAYS = 366
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Upper bounds of the first-response distribution's buckets; the last bucket is open.
BUCKET_BOUNDS = (
    timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2),
    timedelta(hours=4), timedelta(hours=8), timedelta(hours=24),
)
OUTCOMES = ("met", "missed", "breached", "pending")
K = TypeVar("K", bound=Hashable)


# -- the date range ----------------------------------------------------------------------

class RangeError(ValueError):
    """A `from`/`to` the reports cannot use. `template` and `fields` let the page say it
    in the user's language; str() is the English text."""

    def __init__(self, template: str, **fields: object):
        super().__init__(template.format(**fields))
        self.template = template
        self.fields = fields


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class DateRange:
    """Local days `first`..`last`, both included, in the configured time zone."""

    first: date
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return local_midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        """Exclusive: the midnight after `last`."""
        return local_midnight(self.last + timedelta(days=1), self.tz)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def day_of(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def today_range(now: datetime, tz: ZoneInfo) -> DateRange:
    today = now.astimezone(tz).date()
    return DateRange(today, today, tz)


def week_range(now: datetime, tz: ZoneInfo) -> DateRange:
    """Monday to Sunday of the local week holding `now`."""
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    return DateRange(monday, monday + timedelta(days=6), tz)


def _parse_day(text: str, name: str) -> date:
    if not ISO_DATE.fullmatch(text):
        raise RangeError("{name} must be a date as YYYY-MM-DD, got {got}", name=name,
                         got=repr(text[:40]))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RangeError("{name} is not a real date: {got}", name=name, got=text) from None


def parse_range(from_text: str | None, to_text: str | None, now: datetime,
                tz: ZoneInfo) -> DateRange:
    """`?from=&to=` as local dates, both included; the last 7 days when not given."""
    last = _parse_day(to_text, "to") if to_text else now.astimezone(tz).date()
    first = (_parse_day(from_text, "from") if from_text
             else last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise RangeError("from ({first}) is after to ({last})", first=first, last=last)
    if (last - first).days >= MAX_DAYS:
        raise RangeError("a report covers at most {days} days; shorten the range",
                         days=MAX_DAYS)
    return DateRange(first, last, tz)


# -- the rows the figures are computed from ---------------------------------------------

@dataclass(frozen=True)
class SlaRow:
    """A mention with a deadline: whether it was answered in time."""

    channel: str
    assignee: str | None
    policy: str | None
    deadline_at: datetime
    first_response_at: datetime | None

    def outcome(self, now: datetime) -> str:
        if self.first_response_at is not None:
            return "met" if self.first_response_at <= self.deadline_at else "missed"
        return "breached" if now >= self.deadline_at else "pending"


@dataclass(frozen=True)
class ResponseRow:
    """An answered mention: how long its first response took."""

    channel: str
    assignee: str | None
    created_at: datetime
    first_response_at: datetime

    @property
    def seconds(self) -> float:
        """Never negative: a platform clock a little ahead must not make a response early."""
        return max(0.0, (self.first_response_at - self.created_at).total_seconds())


@dataclass(frozen=True)
class VolumeRow:
    """A mention that reached the queue (noise excluded): volume and sentiment."""

    channel: str
    created_at: datetime
    sentiment: float


async def load_sla_rows(session: AsyncSession, start: datetime, end: datetime) -> list[SlaRow]:
    rows = await session.execute(
        select(Mention.channel, Mention.assignee, Mention.sla_policy, Mention.deadline_at,
               Mention.first_response_at)
        .where(Mention.deadline_at >= start, Mention.deadline_at < end)
    )
    return [SlaRow(*row) for row in rows]


async def load_response_rows(session: AsyncSession, start: datetime,
                             end: datetime) -> list[ResponseRow]:
    rows = await session.execute(
        select(Mention.channel, Mention.assignee, Mention.created_at, Mention.first_response_at)
        .where(Mention.first_response_at >= start, Mention.first_response_at < end,
               Mention.status != "ignored")
    )
    return [ResponseRow(*row) for row in rows]


async def load_volume_rows(session: AsyncSession, start: datetime,
                           end: datetime) -> list[VolumeRow]:
    rows = await session.execute(
        select(Mention.channel, Mention.created_at, Mention.sentiment)
        .where(Mention.created_at >= start, Mention.created_at < end,
               Mention.status != "ignored")
    )
    return [VolumeRow(*row) for row in rows]


# -- pure figures --------------------------------------------------------------------

@dataclass
class Compliance:
    met: int = 0
    missed: int = 0
    breached: int = 0  # unanswered and past the deadline
    pending: int = 0  # unanswered, not due yet: not counted either way

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def answered(self) -> int:
        return self.met + self.missed

    @property
    def counted(self) -> int:
        return self.met + self.missed + self.breached

    @property
    def ratio(self) -> float | None:
        return self.met / self.counted if self.counted else None


def compliance(rows: Iterable[SlaRow], now: datetime) -> Compliance:
    total = Compliance()
    for row in rows:
        total.add(row.outcome(now))
    return total


def compliance_by(rows: Iterable[SlaRow], key: Callable[[SlaRow], K],
                  now: datetime) -> dict[K, Compliance]:
    groups: dict[K, Compliance] = defaultdict(Compliance)
    for row in rows:
        groups[key(row)].add(row.outcome(now))
    return dict(sorted(groups.items(), key=lambda item: _sort_key(item[0])))


def percentile(values: Sequence[float], pct: int) -> float | None:
    """Nearest rank: the smallest value with at least `pct`% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, (pct * len(ordered) + 99) // 100)
    return ordered[rank - 1]


@dataclass(frozen=True)
class ResponseStats:
    count: int
    p50: float | None  # seconds
    p90: float | None


def response_stats(seconds: Sequence[float]) -> ResponseStats:
    return ResponseStats(len(seconds), percentile(seconds, 50), percentile(seconds, 90))


def responses_by(rows: Iterable[ResponseRow],
                 key: Callable[[ResponseRow], K]) -> dict[K, ResponseStats]:
    groups: dict[K, list[float]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row.seconds)
    return {k: response_stats(v) for k, v in sorted(groups.items(),
                                                     key=lambda item: _sort_key(item[0]))}


def bucket_of(seconds: float) -> int:
    for index, bound in enumerate(BUCKET_BOUNDS):
        if seconds < bound.total_seconds():
            return index
    return len(BUCKET_BOUNDS)


def distribution(rows: Iterable[ResponseRow]) -> dict[str, list[int]]:
    """First responses per channel counted into BUCKET_BOUNDS (lower bound included)."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        counts.setdefault(row.channel, [0] * (len(BUCKET_BOUNDS) + 1))[bucket_of(row.seconds)] += 1
    return dict(sorted(counts.items()))


@dataclass
class DayFigures:
    day: date
    volume: int = 0
    negative: int = 0
    sentiment_total: float = 0.0
    breaches: int = 0  # deadlines that day, missed or still unanswered after it

    @property
    def mean_sentiment(self) -> float | None:
        return self.sentiment_total / self.volume if self.volume else None


def daily(rng: DateRange, sla_rows: Iterable[SlaRow], volume_rows: Iterable[VolumeRow],
          now: datetime, negative_below: float) -> list[DayFigures]:
    days = {day: DayFigures(day) for day in rng.days}
    for row in volume_rows:
        figures = days.get(rng.day_of(row.created_at))
        if figures is None:
            continue
        figures.volume += 1
        figures.sentiment_total += row.sentiment
        figures.negative += row.sentiment < negative_below
    for sla_row in sla_rows:
        figures = days.get(rng.day_of(sla_row.deadline_at))
        if figures is not None and sla_row.outcome(now) in ("missed", "breached"):
            figures.breaches += 1
    return list(days.values())


def _sort_key(key: Any) -> Any:
    """Groups in a stable order; None (unassigned, no policy) last."""
    if isinstance(key, tuple):
        return tuple(_sort_key(part) for part in key)
    return (key is None, key if key is not None else "")


@dataclass
class SlaReport:
    range: DateRange
    now: datetime
    negative_below: float
    overall: Compliance
    by_agent: dict[str | None, Compliance]
    by_channel: dict[str, Compliance]
    by_policy: dict[str | None, Compliance]
    responses: ResponseStats
    responses_by_channel: dict[str, ResponseStats]
    responses_by_day: dict[date, ResponseStats]
    responses_by_channel_day: dict[tuple[str, date], ResponseStats]
    distribution: dict[str, list[int]]
    days: list[DayFigures] = field(default_factory=list)


def build_report(rng: DateRange, now: datetime, sla_rows: Sequence[SlaRow],
                 response_rows: Sequence[ResponseRow], volume_rows: Sequence[VolumeRow],
                 negative_below: float) -> SlaReport:
    by_day = responses_by(response_rows, lambda r: rng.day_of(r.first_response_at))
    return SlaReport(
        range=rng, now=now, negative_below=negative_below,
        overall=compliance(sla_rows, now),
        by_agent=compliance_by(sla_rows, lambda r: r.assignee, now),
        by_channel=compliance_by(sla_rows, lambda r: r.channel, now),
        by_policy=compliance_by(sla_rows, lambda r: r.policy, now),
        responses=response_stats([r.seconds for r in response_rows]),
        responses_by_channel=responses_by(response_rows, lambda r: r.channel),
        responses_by_day={day: by_day.get(day, ResponseStats(0, None, None))
                          for day in rng.days},
        responses_by_channel_day=responses_by(
            response_rows, lambda r: (r.channel, rng.day_of(r.first_response_at))),
        distribution=distribution(response_rows),
        days=daily(rng, sla_rows, volume_rows, now, negative_below),
    )


async def sla_report(session: AsyncSession, rng: DateRange, now: datetime,
                     negative_below: float) -> SlaReport:
    """Three queries, whatever the range or the number of mentions."""
    return build_report(
        rng, now,
        await load_sla_rows(session, rng.start, rng.end),
        await load_response_rows(session, rng.start, rng.end),
        await load_volume_rows(session, rng.start, rng.end),
        negative_below,
    )


# -- the lead's team view --------------------------------------------------------------

@dataclass
class TeamFigures:
    today: DateRange
    week: DateRange
    compliance_today: dict[str, Compliance]  # by channel
    compliance_week: dict[str, Compliance]
    total_today: Compliance
    total_week: Compliance
    answered_today: dict[str | None, ResponseStats]  # by assignee; p50 is the median


def build_team_figures(now: datetime, tz: ZoneInfo, week_rows: Sequence[SlaRow],
                       answered_rows: Sequence[ResponseRow]) -> TeamFigures:
    today, week = today_range(now, tz), week_range(now, tz)
    today_rows = [row for row in week_rows if today.holds(row.deadline_at)]
    return TeamFigures(
        today=today, week=week,
        compliance_today=compliance_by(today_rows, lambda r: r.channel, now),
        compliance_week=compliance_by(week_rows, lambda r: r.channel, now),
        total_today=compliance(today_rows, now),
        total_week=compliance(week_rows, now),
        answered_today=responses_by(answered_rows, lambda r: r.assignee),
    )


async def team_figures(session: AsyncSession, now: datetime, tz: ZoneInfo) -> TeamFigures:
    """Today is inside this week, so one read of the week's deadlines serves both."""
    today, week = today_range(now, tz), week_range(now, tz)
    return build_team_figures(
        now, tz,
        await load_sla_rows(session, week.start, week.end),
        await load_response_rows(session, today.start, today.end),
    )


HELD_SHOWN = 100  # per agent on the team page


async def open_assigned(session: AsyncSession, per_agent: int = HELD_SHOWN
                        ) -> dict[str, list[tuple[Mention, Author | None]]]:
    """Each agent's `per_agent` most urgent open mentions: what a lead may move. Bounded,
    so the team page stays small whatever the backlog (the agent's load gives the
    count)."""
    urgency = func.row_number().over(
        partition_by=Mention.assignee,
        order_by=(Mention.deadline_at.is_(None), Mention.deadline_at, Mention.id))
    ranked = (select(Mention.id, urgency.label("rank"))
              .where(Mention.status.in_(OPEN_STATUSES), Mention.assignee.is_not(None))
              .subquery())
    rows = await session.execute(
        select(Mention, Author)
        .join(ranked, ranked.c.id == Mention.id)
        .outerjoin(Author, Author.id == Mention.author_id)
        .where(ranked.c.rank <= per_agent)
        .order_by(Mention.deadline_at.is_(None), Mention.deadline_at, Mention.id)
    )
    held: dict[str, list[tuple[Mention, Author | None]]] = defaultdict(list)
    for mention, author in rows.all():
        held[mention.assignee].append((mention, author))
    return dict(held)


async def mentions_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Mention]:
    """The rows a bulk move touches, in one read (then `session.get` finds them loaded)."""
    rows = await session.scalars(select(Mention).where(Mention.id.in_(list(ids))))
    return {mention.id: mention for mention in rows}
