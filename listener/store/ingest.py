"""Writes the pipeline makes inside its one transaction per batch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import RawAuthor, Rejected
from listener.identities import BadIdentity, label, normalise
from listener.models import (
    Author,
    Customer,
    CustomerIdentity,
    CustomerLink,
    Mention,
    MentionEvent,
    RejectedItem,
    SourceState,
)
from listener.store import routing as routing_store
from listener.store.customers import claim_identities, identity_id
from listener.store.queries import open_counts


@dataclass(frozen=True)
class AuthorLink:
    author_id: int
    customer_id: int
    segment: str | None


def _refresh(row: Author, seen: RawAuthor) -> None:
    """Keep names and reach current; only touch the row when something changed."""
    if seen.name and seen.name != row.name:
        row.name = seen.name
    if seen.followers is not None and seen.followers != row.followers:
        row.followers = seen.followers
    if seen.email and not row.email:
        row.email = seen.email


@dataclass(frozen=True)
class AnsweredMention:
    id: int
    customer_id: int | None
    source: str
    thread: str | None
    first_response_at: datetime


class IngestTx:
    def __init__(self, session: AsyncSession, phone_region: str = "TR"):
        self.session = session
        self.phone_region = phone_region
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

    async def answered_conversations(self, source: str, customer_ids: set[int],
                                     threads: set[str], since: datetime
                                     ) -> list[AnsweredMention]:
        """Answered mentions a new one may follow up: the customers' answered since
        `since`, and any answered in these threads of this source."""
        conditions = []
        if customer_ids:
            conditions.append(and_(Mention.customer_id.in_(customer_ids),
                                   Mention.first_response_at >= since))
        if threads:
            conditions.append(and_(Mention.source == source, Mention.thread.in_(threads)))
        if not conditions:
            return []
        rows = await self.session.execute(
            select(Mention.id, Mention.customer_id, Mention.source, Mention.thread,
                   Mention.first_response_at)
            .where(Mention.first_response_at.is_not(None), or_(*conditions)))
        return [AnsweredMention(*row) for row in rows]

    async def recent_texts(self, author_ids: set[int], since: datetime
                           ) -> list[tuple[int, str, datetime]]:
        """(author_id, text, created_at) of these authors' mentions since `since`: what
        the noise stage compares a batch with to spot an author repeating one text."""
        if not author_ids:
            return []
        rows = await self.session.execute(
            select(Mention.author_id, Mention.text, Mention.created_at)
            .where(Mention.author_id.in_(author_ids), Mention.created_at >= since))
        return [tuple(row) for row in rows]

    async def open_counts(self) -> dict[str, int]:
        return await open_counts(self.session)

    async def away_agents(self) -> set[str]:
        """Agents who set themselves away: routing at ingest skips them."""
        return await routing_store.away_agents(self.session)

    async def conversation_owners(self, customer_ids: set[int], source: str,
                                  threads: set[str], since: datetime
                                  ) -> list[routing_store.ConversationOwner]:
        return await routing_store.conversation_owners(self.session, customer_ids, source,
                                                       threads, since)

    async def last_assigned(self) -> str | None:
        """Round robin resumes after whoever got the newest assigned mention."""
        return await self.session.scalar(
            select(Mention.assignee)
            .where(Mention.assignee.is_not(None))
            .order_by(Mention.id.desc())
            .limit(1)
        )

    async def link_authors(
        self, authors: Iterable[tuple[str, RawAuthor]], now: datetime
    ) -> dict[tuple[str, str], AuthorLink]:
        """Find or create each author and the customer behind it, keyed by (channel, handle).

        One query finds the known authors of a batch; new ones join an existing customer
        only on a strong identifier (see `_customer_for`). Inserts tolerate a concurrent
        writer creating the same row.
        """
        wanted = {(channel, author.handle): author for channel, author in authors}
        links: dict[tuple[str, str], AuthorLink] = {}
        keys = list(wanted)
        for start in range(0, len(keys), 300):
            rows = await self.session.execute(
                select(Author, Customer.segment)
                .join(Customer, Customer.id == Author.customer_id)
                .where(tuple_(Author.channel, Author.handle).in_(keys[start : start + 300]))
            )
            for row, segment in rows:
                _refresh(row, wanted[(row.channel, row.handle)])
                links[(row.channel, row.handle)] = AuthorLink(row.id, row.customer_id, segment)
        for key, author in sorted(wanted.items()):  # one order: no deadlocks on PostgreSQL
            if key not in links:
                links[key] = await self._new_author(key[0], author, now)
        return links

    def _identities(self, channel: str, author: RawAuthor) -> list[tuple[str, str, str]]:
        """The author's strong identifiers, normalised; an unreadable phone is left out."""
        found = [normalise("handle", author.handle, channel)]
        for kind, value in (("email", author.email), ("phone", author.phone)):
            if value:
                try:
                    found.append(normalise(kind, value, region=self.phone_region))
                except BadIdentity:
                    continue
        return found

    async def _new_author(self, channel: str, author: RawAuthor, now: datetime) -> AuthorLink:
        identities = self._identities(channel, author)
        customer_id, segment, actor = await self._customer_for(author, identities, now)
        values = {
            "channel": channel,
            "handle": author.handle,
            "name": author.name,
            "followers": author.followers,
            "email": author.email,
            "customer_id": customer_id,
        }
        author_id = (
            await self.session.execute(
                self._insert(Author)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["channel", "handle"])
                .returning(Author.id)
            )
        ).scalar_one_or_none()
        if author_id is None:
            row = (
                await self.session.execute(
                    select(Author.id, Author.customer_id).where(
                        Author.channel == channel, Author.handle == author.handle
                    )
                )
            ).one()
            return AuthorLink(row.id, row.customer_id, segment)
        claimed = await claim_identities(self.session, customer_id, identities, now)
        if actor is not None:
            handle = identities[0]
            self.session.add(CustomerLink(
                action="link", customer_id=customer_id, identity=label(*handle), actor=actor,
                identity_id=await identity_id(self.session, *handle), at=now,
                undo={"authors": [author_id], "identities": claimed}))
        return AuthorLink(author_id, customer_id, segment)

    async def _customer_for(
        self, author: RawAuthor, identities: list[tuple[str, str, str]], now: datetime
    ) -> tuple[int, str | None, str | None]:
        """(customer id, segment, actor of the automatic link or None for a new customer).

        Only strong identifiers link: a handle the CRM import named (`auto:crm`), the same
        e-mail (`auto:email`) or the same phone (`auto:phone`). Never a display name: two
        people called Ali Veli are two customers until someone merges them.
        """
        rows = (await self.session.execute(
            select(CustomerIdentity.kind, Customer.id, Customer.segment)
            .join(Customer, Customer.id == CustomerIdentity.customer_id)
            .where(tuple_(CustomerIdentity.kind, CustomerIdentity.channel,
                          CustomerIdentity.value).in_(identities))
        )).all()
        rank = {"handle": 0, "email": 1, "phone": 2}
        for kind, found_id, segment in sorted(rows, key=lambda r: rank.get(r[0], 3)):
            return found_id, segment, "auto:crm" if kind == "handle" else f"auto:{kind}"
        email = next((v for k, _, v in identities if k == "email"), None)
        if email:
            row = (await self.session.execute(
                select(Customer.id, Customer.segment).where(Customer.email == email)
            )).first()
            if row is not None:
                return row.id, row.segment, "auto:email"
        customer_id = (
            await self.session.execute(
                self._insert(Customer)
                .values(display_name=author.name or author.handle, email=email, created_at=now)
                .on_conflict_do_nothing(index_elements=["email"])
                .returning(Customer.id)
            )
        ).scalar_one_or_none()
        if customer_id is None:  # a concurrent writer created the customer of this e-mail
            return await self._customer_for(author, identities, now)
        return customer_id, None, None

    async def insert_mentions(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """external_id → new id; rows whose (source, external_id) exists already (a
        concurrent writer won the race) are left out."""
        ids: dict[str, int] = {}
        for start in range(0, len(rows), 200):
            statement = (
                self._insert(Mention)
                .values(rows[start : start + 200])
                .on_conflict_do_nothing(index_elements=["source", "external_id"])
                .returning(Mention.id, Mention.external_id)
            )
            ids.update({ext: mid for mid, ext in await self.session.execute(statement)})
        return ids

    async def add_events(self, events: list[dict[str, Any]]) -> None:
        if events:
            await self.session.execute(insert(MentionEvent), events)

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
        self, source: str, handle: str, replied_at: datetime, in_reply_to: str | None,
        thread: str | None, reply_id: str | None = None, reply_url: str | None = None,
    ) -> list[Mention]:
        """The brand answered on the platform itself: that stops the customer's clock.

        A reply to a known post answers that post; a post in a thread without a parent
        we know (a Discourse topic) answers every earlier unanswered post in the thread.
        Returns the mentions it answered.
        """
        if in_reply_to:
            where = [Mention.external_id == in_reply_to]
        elif thread:
            where = [Mention.thread == thread, Mention.created_at <= replied_at]
        else:
            return []
        parents = await self.session.scalars(
            select(Mention).where(
                Mention.source == source,
                Mention.first_response_at.is_(None),
                Mention.status.in_(("new", "assigned")),
                *where,
            )
        )
        answered = list(parents)
        for parent in answered:
            parent.first_response_at = max(replied_at, parent.created_at)
            parent.status = "responded"
            parent.next_alert_at = None
            parent.response_external_id = reply_id
            parent.response_url = reply_url
            self.add_event(parent.id, "responded", replied_at, handle,
                           {"native": True, "reply_id": reply_id, "url": reply_url})
        return answered

    async def save_cursor(self, source: str, kind: str, cursor: str | None, now: datetime,
                          stored: int = 0) -> None:
        state = await self.session.get(SourceState, source)
        if state is None:
            state = SourceState(id=source, kind=kind, consecutive_failures=0, first_polled_at=now)
            self.session.add(state)
        state.cursor = cursor
        state.last_success_at = now
        state.consecutive_failures = 0
        state.last_outcome = "ok"
        state.last_items = stored

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
    session: AsyncSession, source: str, kind: str, error: str, now: datetime,
    outcome: str = "error",
) -> int:
    """Health bookkeeping for a failed poll; returns the consecutive failure count."""
    state = await session.get(SourceState, source)
    if state is None:
        state = SourceState(id=source, kind=kind, consecutive_failures=0)
        session.add(state)
    state.consecutive_failures = (state.consecutive_failures or 0) + 1
    state.last_error = error[:2000]
    state.last_error_at = now
    state.last_outcome = outcome
    return state.consecutive_failures


async def load_cursor(session: AsyncSession, source: str) -> tuple[str | None, bool]:
    """(cursor, first_poll): first_poll is True until a poll has ever succeeded."""
    state = await session.get(SourceState, source)
    if state is None or state.last_success_at is None:
        return (state.cursor if state else None), True
    return state.cursor, False
