"""The alert outbox's reads and writes for the delivery worker and `GET /api/v1/alerts`.

The worker reads the due rows, groups them into messages, then claims and sends one
message at a time. Claiming differs by backend, the guarantee does not. On PostgreSQL a
message's rows are locked (`FOR UPDATE SKIP LOCKED`) in a transaction that stays open
while it is sent and commits its outcome at once: replicas never send one row twice, and
a process killed mid-round repeats at most the message in flight. On SQLite (one
process) nothing is locked and each outcome is written in a short transaction of its own
after the send, so a slow webhook never holds the process-wide write lock. Every outcome
update only touches rows still pending, so a row is recorded as sent at most once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import OutboxAlert
from listener.store.base import Store

STATES = ("pending", "sent", "failed")


def _still_pending(ids: Collection[int]) -> Any:
    return (
        update(OutboxAlert)
        .where(OutboxAlert.id.in_(list(ids)), OutboxAlert.state == "pending",
               OutboxAlert.sent_at.is_(None))
        .execution_options(synchronize_session=False)
    )


class Claim:
    """The rows of one message this worker may send (`ids`), and the way to record what
    became of them."""

    def __init__(self, ids: set[int], session: AsyncSession | None, store: Store):
        self.ids = ids
        self._session = session
        self._store = store

    async def _apply(self, statement: Any) -> None:
        if self._session is not None:
            await self._session.execute(statement)
            return
        async with self._store.write() as session:
            await session.execute(statement)

    async def sent(self, ids: Collection[int], now: datetime, delivered_in: int | None) -> None:
        await self._apply(_still_pending(ids).values(
            state="sent", sent_at=now, attempts=OutboxAlert.attempts + 1, last_error=None,
            delivered_in=delivered_in))

    async def retry(self, ids: Collection[int], at: datetime, error: str) -> None:
        await self._apply(_still_pending(ids).values(
            next_attempt_at=at, attempts=OutboxAlert.attempts + 1, last_error=error))

    async def failed(self, ids: Collection[int], error: str) -> None:
        await self._apply(_still_pending(ids).values(
            state="failed", attempts=OutboxAlert.attempts + 1, last_error=error))


def _due(now: datetime) -> tuple[Any, ...]:
    return (OutboxAlert.state == "pending", OutboxAlert.sent_at.is_(None),
            OutboxAlert.next_attempt_at <= now)


async def due_rows(store: Store, now: datetime, sinks: Collection[str],
                   limit: int = 1000) -> list[OutboxAlert]:
    """Pending rows of these sinks whose next attempt has come, oldest first. Read, not
    locked: `claim` takes each message's rows."""
    async with store.read() as session:
        return list(await session.scalars(
            select(OutboxAlert)
            .where(*_due(now), OutboxAlert.sink.in_(list(sinks)))
            .order_by(OutboxAlert.created_at, OutboxAlert.id)
            .limit(limit)))


@asynccontextmanager
async def claim(store: Store, ids: Collection[int], now: datetime) -> AsyncIterator[Claim]:
    """One message's rows, for as long as it is sent and its outcome recorded. On
    PostgreSQL, rows another replica holds or has already recorded are left out."""
    if store.dialect != "postgresql":
        yield Claim(set(ids), None, store)
        return
    async with store.write() as session:
        taken = set(await session.scalars(
            select(OutboxAlert.id)
            .where(OutboxAlert.id.in_(list(ids)), *_due(now))
            .order_by(OutboxAlert.id)
            .with_for_update(skip_locked=True)))
        yield Claim(taken, session, store)


async def fail_unrouted(store: Store, configured: Collection[str], reason: str) -> int:
    """Pending rows for a sink the config no longer has can never be sent: say so."""
    async with store.write() as session:
        result = await session.execute(
            update(OutboxAlert)
            .where(OutboxAlert.state == "pending", OutboxAlert.sent_at.is_(None),
                   OutboxAlert.sink.not_in(list(configured)))
            .values(state="failed", last_error=reason)
            .execution_options(synchronize_session=False))
        return result.rowcount or 0


async def pending_count(session: AsyncSession) -> int:
    query = select(func.count()).select_from(OutboxAlert).where(
        OutboxAlert.sent_at.is_(None), OutboxAlert.state == "pending")
    return await session.scalar(query) or 0


async def recent(session: AsyncSession, limit: int, state: str | None = None,
                 kind: str | None = None) -> Sequence[OutboxAlert]:
    """Newest first."""
    query = select(OutboxAlert).order_by(OutboxAlert.created_at.desc(),
                                         OutboxAlert.id.desc()).limit(limit)
    if state is not None:
        query = query.where(OutboxAlert.state == state)
    if kind is not None:
        query = query.where(OutboxAlert.kind == kind)
    return list(await session.scalars(query))
