"""The SLA engine's reads and writes: the next alert moment, the mentions now due, and
outbox rows (one per mention, moment and sink; the unique dedupe key makes a second write
of the same alert a no-op, which is what keeps alerts exactly-once across restarts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import insert as sql_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import OPEN_STATUSES, Author, Mention, MentionEvent, OutboxAlert


async def next_alert_moment(session: AsyncSession) -> datetime | None:
    """The earliest armed moment (an index scan on ix_mentions_next_alert_at)."""
    return await session.scalar(select(func.min(Mention.next_alert_at)))


async def due_for_alerts(session: AsyncSession, now: datetime,
                         limit: int = 500) -> list[tuple[Mention, Author | None]]:
    """Mentions whose next moment has come, most overdue first. On PostgreSQL the rows are
    locked and others' locked rows skipped, so two replicas never fire one moment twice."""
    query = (
        select(Mention, Author)
        .outerjoin(Author, Author.id == Mention.author_id)
        .where(Mention.next_alert_at.is_not(None), Mention.next_alert_at <= now)
        .order_by(Mention.next_alert_at, Mention.id)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Mention)
    return [(m, a) for m, a in (await session.execute(query)).all()]


def still_open(mention: Mention) -> bool:
    return mention.status in OPEN_STATUSES and mention.first_response_at is None


async def add_outbox_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert alerts, a few hundred a statement; a row whose dedupe key exists already is
    skipped. Returns how many are new."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    written = 0
    for start in range(0, len(rows), 400):
        result = await session.execute(
            insert(OutboxAlert).values(rows[start:start + 400])
            .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(OutboxAlert.id))
        written += len(result.all())
    return written


def moment_event(mention: Mention, moment: Any, at: datetime) -> dict[str, Any]:
    """The mention's history line for an alert moment (at_risk, breached, escalated)."""
    return {"mention_id": mention.id, "kind": moment.kind, "at": at, "actor": "sla",
            "data": {"moment_at": moment.at.isoformat(), "index": moment.index}}


async def add_events(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    if events:
        await session.execute(sql_insert(MentionEvent), events)
