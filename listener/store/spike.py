"""The spike watcher's reads and writes: negative mentions per window, the angriest
examples, and the open spike.

A negative mention is any mention whose sentiment is below the threshold, answered or
not (a crisis does not stop because someone replied), except the brand's own posts and
backfill, which are stored `ignored`. Counted by `created_at`, the time it was posted.
With `brand` (a competitor's name), the same for that competitor's mentions: those
counted in share of voice (its own posts and noise are not).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import Author, Mention, SpikeState

# One PostgreSQL advisory lock (any constant both replicas agree on): replicas decide
# "has a spike started?" one at a time, so a spike is opened, and alerted, once.
SPIKE_LOCK = 0x5350494B


def _negative(below: float, brand: str | None = None) -> Any:
    if brand is not None:  # a competitor's mentions are all stored ignored
        return and_(Mention.sentiment < below, Mention.brand == brand,
                    Mention.counted.is_(True))
    return and_(Mention.sentiment < below, Mention.status != "ignored")


async def negative_counts(session: AsyncSession, spans: Sequence[tuple[datetime, datetime]],
                          below: float, brand: str | None = None) -> list[int]:
    """Negative mentions posted in each [start, end) span, in span order, in one grouped
    query (an index range per span on ix_mentions_created_at)."""
    if not spans:
        return []
    inside = [and_(Mention.created_at >= start, Mention.created_at < end)
              for start, end in spans]
    span = case(*((condition, index) for index, condition in enumerate(inside)))
    tagged = select(span.label("span")).where(_negative(below, brand),
                                              or_(*inside)).subquery()
    rows = await session.execute(select(tagged.c.span, func.count()).group_by(tagged.c.span))
    counts = [0] * len(spans)
    for index, count in rows.all():
        if index is not None:
            counts[int(index)] = int(count)
    return counts


async def angriest(session: AsyncSession, start: datetime, end: datetime, below: float,
                   limit: int = 3, brand: str | None = None
                   ) -> list[tuple[Mention, Author | None]]:
    """The most negative mentions posted in [start, end), newest first among equals."""
    query = (
        select(Mention, Author)
        .outerjoin(Author, Author.id == Mention.author_id)
        .where(_negative(below, brand), Mention.created_at >= start,
               Mention.created_at < end)
        .order_by(Mention.sentiment, Mention.created_at.desc(), Mention.id.desc())
        .limit(limit)
    )
    return [(m, a) for m, a in (await session.execute(query)).all()]


async def open_spike(session: AsyncSession, brand: str | None = None) -> SpikeState | None:
    """The spike in progress, if any (the latest one not ended): ours, or `brand`'s."""
    same_brand = SpikeState.brand.is_(None) if brand is None else SpikeState.brand == brand
    query = (select(SpikeState).where(SpikeState.ended_at.is_(None), same_brand)
             .order_by(SpikeState.started_at.desc(), SpikeState.id.desc()).limit(1))
    return await session.scalar(query)


async def lock_spikes(session: AsyncSession) -> None:
    """Held to the end of the transaction. SQLite needs none: its writes are serialized."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SPIKE_LOCK})


def start_spike(session: AsyncSession, at: datetime, count: int,
                brand: str | None = None) -> SpikeState:
    spike = SpikeState(started_at=at, ended_at=None, peak_count=count, brand=brand)
    session.add(spike)
    return spike
