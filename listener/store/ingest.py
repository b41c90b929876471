"""Writes the pipeline makes inside its one transaction per batch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import RawAuthor, Rejected
from listener.models import (
    OPEN_STATUSES,
    Author,
    Customer,
    Mention,
    MentionEvent,
    RejectedItem,
    SourceState,
)


class IngestTx:
    def __init__(self, session: AsyncSession):
        self.session = session
        self._insert = (
            postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        )

    async def existing_ids(self, source: str, external_ids: Iterable[str]) -> set[str]:
        ids = list(set(external_ids))
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.session.scalars(
                select(Mention.external_id).where(
                    Mention.source == source, Mention.external_id.in_(chunk)
                )
            )
            found.update(rows)
        return found

    async def open_counts(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(Mention.assignee, func.count())
            .where(Mention.status.in_(OPEN_STATUSES), Mention.assignee.is_not(None))
            .group_by(Mention.assignee)
        )
        return {agent: count for agent, count in rows}

    async def last_assigned(self) -> str | None:
        """Round robin resumes after whoever got the newest assigned mention."""
        return await self.session.scalar(
            select(Mention.assignee)
            .where(Mention.assignee.is_not(None))
            .order_by(Mention.id.desc())
            .limit(1)
        )

    async def link_author(self, channel: str, author: RawAuthor, now: datetime) -> tuple[int, int]:
        """Find or create the author and the customer behind it: (author_id, customer_id).

        A new author joins an existing customer when the e-mail matches, or when the same
        handle with the same display name is already known on another channel.
        """
        found = await self.session.scalar(
            select(Author).where(Author.channel == channel, Author.handle == author.handle)
        )
        if found is not None:
            found.name = author.name or found.name
            found.followers = author.followers if author.followers is not None else found.followers
            found.email = found.email or author.email
            return found.id, found.customer_id
        customer_id = await self._customer_for(author, now)
        row = Author(
            channel=channel,
            handle=author.handle,
            name=author.name,
            followers=author.followers,
            email=author.email,
            customer_id=customer_id,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id, customer_id

    async def _customer_for(self, author: RawAuthor, now: datetime) -> int:
        if author.email:
            customer_id = await self.session.scalar(
                select(Customer.id).where(Customer.email == author.email)
            )
            if customer_id is not None:
                return customer_id
        if author.name:
            customer_id = await self.session.scalar(
                select(Author.customer_id)
                .where(
                    Author.handle == author.handle, func.lower(Author.name) == author.name.lower()
                )
                .limit(1)
            )
            if customer_id is not None:
                return customer_id
        customer = Customer(
            display_name=author.name or author.handle, email=author.email, created_at=now
        )
        self.session.add(customer)
        await self.session.flush()
        return customer.id

    async def segment_of(self, customer_id: int) -> str | None:
        return await self.session.scalar(select(Customer.segment).where(Customer.id == customer_id))

    async def insert_mention(self, values: dict[str, Any]) -> int | None:
        """None when (source, external_id) already exists: a concurrent writer won the race."""
        statement = (
            self._insert(Mention)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(Mention.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    def add_event(
        self,
        mention_id: int,
        kind: str,
        at: datetime,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            MentionEvent(mention_id=mention_id, kind=kind, at=at, actor=actor, data=data)
        )

    async def record_native_reply(
        self, source: str, parent_external_id: str, handle: str, replied_at: datetime
    ) -> bool:
        """The brand answered on the platform itself: that stops the customer's clock."""
        parent = await self.session.scalar(
            select(Mention).where(
                Mention.source == source, Mention.external_id == parent_external_id
            )
        )
        if parent is None or parent.first_response_at is not None:
            return False
        parent.first_response_at = replied_at
        parent.status = "responded"
        self.add_event(parent.id, "responded", replied_at, handle, {"native": True})
        return True

    async def save_cursor(self, source: str, kind: str, cursor: str | None, now: datetime) -> None:
        state = await self.session.get(SourceState, source)
        if state is None:
            state = SourceState(id=source, kind=kind, consecutive_failures=0, first_polled_at=now)
            self.session.add(state)
        state.cursor = cursor
        state.last_success_at = now
        state.consecutive_failures = 0
        state.last_error = None

    def record_rejected(self, source: str, rejected: Iterable[Rejected], now: datetime) -> None:
        for item in rejected:
            self.session.add(
                RejectedItem(
                    source=source,
                    external_id=item.external_id,
                    reason=item.reason[:2000],
                    payload=item.payload,
                    at=now,
                )
            )


async def record_poll_failure(
    session: AsyncSession, source: str, kind: str, error: str, now: datetime
) -> int:
    """Health bookkeeping for a failed poll; returns the consecutive failure count."""
    state = await session.get(SourceState, source)
    if state is None:
        state = SourceState(id=source, kind=kind, consecutive_failures=0)
        session.add(state)
    state.consecutive_failures = (state.consecutive_failures or 0) + 1
    state.last_error = error[:2000]
    state.last_error_at = now
    return state.consecutive_failures


async def load_cursor(session: AsyncSession, source: str) -> tuple[str | None, bool]:
    """(cursor, first_poll): first_poll is True until a poll has ever succeeded."""
    state = await session.get(SourceState, source)
    if state is None or state.last_success_at is None:
        return (state.cursor if state else None), True
    return state.cursor, False


async def set_status(session: AsyncSession, mention_id: int, status: str) -> None:
    await session.execute(update(Mention).where(Mention.id == mention_id).values(status=status))
