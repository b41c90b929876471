"""Share of voice: how much of what is said is about us and about each competitor, and
in what mood, per brand, channel and local day.

Counted are the mentions stored with `counted` (someone's own words about a brand: not
a brand's own post, not noise), by posting time (`created_at`), in local days of the
configured time zone. Sentiment classes are the enricher's own thresholds (what routing
acts on, as on the dashboard): negative at -0.3 or below, positive at 0.3 or above.
`listener_brand_mentions_total` counts the same mentions as they are stored.

The database does the counting, in one grouped query whatever the range or the volume:
rows per (local day, brand, channel, sentiment class). The local day is a CASE over the
midnights computed here, so SQLite and PostgreSQL bucket alike in any time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import Mention
from listener.pipeline.enrich import NEGATIVE, POSITIVE
from listener.reports import DateRange, local_midnight

SENTIMENTS = ("negative", "neutral", "positive")


def sentiment_class(score: float) -> str:
    if score <= NEGATIVE:
        return "negative"
    return "positive" if score >= POSITIVE else "neutral"


@dataclass(frozen=True)
class Cell:
    """One group of the query: mentions of one brand on one channel on one local day,
    in one sentiment class, and the sum of their sentiment."""

    day: date
    brand: str
    channel: str
    sentiment: str
    count: int
    sentiment_total: float


@dataclass
class BrandFigures:
    brand: str
    mentions: int = 0
    by_sentiment: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SENTIMENTS, 0))
    sentiment_total: float = 0.0

    def add(self, cell: Cell) -> None:
        self.mentions += cell.count
        self.by_sentiment[cell.sentiment] += cell.count
        self.sentiment_total += cell.sentiment_total

    @property
    def mean_sentiment(self) -> float | None:
        return self.sentiment_total / self.mentions if self.mentions else None


@dataclass
class Slice:
    """Every brand's figures over one part of the range (all of it, a channel, a day)."""

    brands: dict[str, BrandFigures]

    @classmethod
    def empty(cls, names: Sequence[str]) -> Slice:
        return cls({name: BrandFigures(name) for name in names})

    @property
    def mentions(self) -> int:
        return sum(figures.mentions for figures in self.brands.values())

    def share(self, brand: str) -> float | None:
        """Percent of this slice's mentions about `brand`; None when it has none."""
        total = self.mentions
        return 100.0 * self.brands[brand].mentions / total if total else None


@dataclass
class ShareOfVoice:
    range: DateRange
    brands: list[str]  # ours, the competitors in config order, then any no longer configured
    total: Slice
    channels: dict[str, Slice]
    days: dict[date, Slice]  # every day of the range, in order
    day_channels: dict[date, dict[str, Slice]]  # only the channels that had mentions


def brand_order(configured: Sequence[str], found: Iterable[str]) -> list[str]:
    """A brand dropped from the config still shows, after the configured ones."""
    return [*configured, *sorted(set(found) - set(configured))]


def build(rng: DateRange, configured: Sequence[str], cells: Sequence[Cell]) -> ShareOfVoice:
    names = brand_order(configured, (cell.brand for cell in cells))
    report = ShareOfVoice(rng, names, Slice.empty(names), {},
                          {day: Slice.empty(names) for day in rng.days},
                          {day: {} for day in rng.days})
    for cell in sorted(cells, key=lambda c: (c.day, c.channel)):
        if cell.day not in report.days:
            continue
        slices = (report.total, report.days[cell.day],
                  report.channels.setdefault(cell.channel, Slice.empty(names)),
                  report.day_channels[cell.day].setdefault(cell.channel, Slice.empty(names)))
        for part in slices:
            part.brands[cell.brand].add(cell)
    report.channels = dict(sorted(report.channels.items()))
    return report


def _local_day(rng: DateRange) -> Any:
    """The index of the local day each mention was posted on (0 = `rng.first`)."""
    midnights = [local_midnight(day, rng.tz) for day in rng.days[1:]]
    if not midnights:
        return literal(0)
    return case(*((Mention.created_at < midnight, index)
                  for index, midnight in enumerate(midnights)), else_=len(midnights))


async def load_cells(session: AsyncSession, rng: DateRange) -> list[Cell]:
    mood = case((Mention.sentiment <= NEGATIVE, 0), (Mention.sentiment >= POSITIVE, 2),
                else_=1)
    # Grouped over a subquery: PostgreSQL would not see a repeated CASE (with its own
    # parameters) in GROUP BY as the selected one.
    tagged = (
        select(_local_day(rng).label("day"), Mention.brand.label("brand"),
               Mention.channel.label("channel"), mood.label("mood"),
               Mention.sentiment.label("sentiment"))
        .where(Mention.counted.is_(True), Mention.created_at >= rng.start,
               Mention.created_at < rng.end)
        .subquery()
    )
    rows = await session.execute(
        select(tagged.c.day, tagged.c.brand, tagged.c.channel, tagged.c.mood, func.count(),
               func.sum(tagged.c.sentiment))
        .group_by(tagged.c.day, tagged.c.brand, tagged.c.channel, tagged.c.mood)
    )
    return [Cell(rng.first + timedelta(days=int(day)), brand, channel, SENTIMENTS[int(mood)],
                 int(count), float(total or 0.0))
            for day, brand, channel, mood, count, total in rows.all()]


async def share_of_voice(session: AsyncSession, rng: DateRange,
                         brands: Sequence[str]) -> ShareOfVoice:
    """`brands`: the configured ones, ours first (`Brands.names`)."""
    return build(rng, brands, await load_cells(session, rng))
