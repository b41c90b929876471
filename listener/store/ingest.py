"""Writes the pipeline makes inside its one transaction per batch."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql
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
from listener.store.customers import Identity, identity_id
from listener.store.driver_rows import insert_rows, json_encoder
from listener.store.queries import open_counts
from listener.store.value_lists import one_of


@dataclass(frozen=True)
class AuthorLink:
    author_id: int
    customer_id: int
    segment: str | None


def _refreshed(author_id: int, stored: tuple[str, int | None, str | None], seen: RawAuthor
               ) -> dict[str, Any] | None:
    """An author's names and reach as last seen, or None when nothing changed (the row is
    then not written). An e-mail once known is kept. Plain values, not the result row:
    a row's attribute access cost more than the rest of the batch's linking of them."""
    old_name, old_followers, old_email = stored
    name = seen.name if seen.name and seen.name != old_name else old_name
    followers = seen.followers if seen.followers is not None else old_followers
    email = seen.email if seen.email and not old_email else old_email
    if (name, followers, email) == stored:
        return None
    return {"author_id": author_id, "new_name": name, "new_followers": followers,
            "new_email": email}


@dataclass(eq=False)
class NewCustomer:
    """A customer a new author needs, before it has an id."""

    display_name: str
    email: str | None
    id: int | None = None


@dataclass
class NewAuthor:
    """What one new author joins and claims, decided before anything is written."""

    key: tuple[str, str]
    author: RawAuthor
    identities: list[Identity]  # the handle first, then e-mail and phone
    customer: int | NewCustomer
    segment: str | None
    actor: str | None  # auto:crm, auto:email, auto:phone; None for a new customer
    claims: list[Identity]  # identities nobody held when its turn came


def plan_new_authors(new: list[tuple[tuple[str, str], RawAuthor]],
                     identities: dict[tuple[str, str], list[Identity]],
                     held: dict[Identity, tuple[int, str | None]],
                     by_email: dict[str, tuple[Any, str | None]]) -> list[NewAuthor]:
    """The customer of each new author, in the order given, exactly as linking them one
    at a time would: each sees the identities and e-mails the ones before it claimed.

    Only strong identifiers link: a handle the CRM import named (`auto:crm`), the same
    e-mail (`auto:email`) or the same phone (`auto:phone`), in that order of trust, then
    a customer's own e-mail field. Never a display name: two people called Ali Veli are
    two customers until someone merges them. `held` and `by_email` are updated.
    """
    plans = []
    for key, author in new:
        found = identities[key]
        email = next((value for kind, _, value in found if kind == "email"), None)
        known = next((i for i in found if i in held), None)
        customer: int | NewCustomer
        if known is not None:
            customer, segment = held[known]
            actor: str | None = "auto:crm" if known[0] == "handle" else f"auto:{known[0]}"
        elif email and email in by_email:
            (customer, segment), actor = by_email[email], "auto:email"
        else:
            customer, segment, actor = NewCustomer(author.name or author.handle, email), None, None
            if email:
                by_email[email] = (customer, None)
        claims = [i for i in found if i not in held]
        for identity in claims:
            held[identity] = (customer, segment)  # type: ignore[assignment]
        plans.append(NewAuthor(key, author, found, customer, segment, actor, claims))
    return plans


class AnsweredMention(NamedTuple):
    """An answered mention a new one may follow up (a named tuple: read by the batch)."""

    id: int
    customer_id: int | None
    source: str
    thread: str | None
    first_response_at: datetime


def _unnest_insert(table: Any, rows: list[dict[str, Any]], tail: str
                   ) -> tuple[Any, dict[str, list[Any]]]:
    """PostgreSQL: the rows as one `INSERT … SELECT FROM unnest(column arrays)`, one
    statement and one array per column, instead of thousands of bound parameters (half
    the cost of a batch's mention insert there). Every row has the same keys."""
    dialect = postgresql.dialect()
    names = list(rows[0])
    arrays = ", ".join(f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect)}[])"
                       for name in names)
    statement = text(f"INSERT INTO {table.name} ({', '.join(names)}) "
                     f"SELECT * FROM unnest({arrays}) {tail}")
    return statement, {name: [row[name] for row in rows] for name in names}


class IngestTx:
    def __init__(self, session: AsyncSession, phone_region: str = "TR"):
        self.session = session
        self.phone_region = phone_region
        self._postgres = session.bind.dialect.name == "postgresql"

    async def existing_ids(self, source: str, external_ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(external_ids))
        if not wanted:
            return set()
        rows = await self.session.scalars(select(Mention.external_id).where(
            Mention.source == source, self._one_of(Mention.external_id, wanted)))
        return set(rows)

    def _grouped(self, keys: Iterable[tuple[Any, ...]]
                 ) -> Iterable[tuple[tuple[Any, ...], list[Any]]]:
        """Keys (…, last) as (prefix, lasts) for `prefix = … AND last IN (lasts)`: the
        unique indexes lead with the prefix columns, and a look-up by the last column
        alone would scan the whole table."""
        by_prefix: dict[tuple[Any, ...], set[Any]] = {}
        for *prefix, last in keys:
            by_prefix.setdefault(tuple(prefix), set()).add(last)
        for prefix in sorted(by_prefix):
            yield prefix, sorted(by_prefix[prefix])

    def _one_of(self, column: Any, values: Collection[Any]) -> Any:
        return one_of(column, values, self.session.bind.dialect.name)

    async def answered_conversations(self, source: str, customer_ids: set[int],
                                     threads: set[str], since: datetime
                                     ) -> list[AnsweredMention]:
        """Answered mentions a new one may follow up: the customers' answered since
        `since`, and any answered in these threads of this source."""
        conditions = []
        if customer_ids:
            # IS NOT NULL beside the range: SQLite then reads ix_mentions_customer_answered
            # (a partial index on exactly that) for the customers' answered range.
            conditions.append(routing_store.mentions_of(
                self.session, Mention.customer_id, customer_ids,
                Mention.first_response_at.is_not(None), Mention.first_response_at >= since))
        if threads:
            conditions.append(and_(Mention.source == source,
                                   self._one_of(Mention.thread, sorted(threads))))
        if not conditions:
            return []
        rows = await self.session.execute(
            select(Mention.id, Mention.customer_id, Mention.source, Mention.thread,
                   Mention.first_response_at)
            .where(Mention.first_response_at.is_not(None), or_(*conditions)))
        # Oldest first: of two answered at the same moment, the first stored is followed up.
        return sorted((AnsweredMention(*row) for row in rows), key=lambda m: m.id)

    async def recent_texts(self, authors: Collection[AuthorLink], since: datetime
                           ) -> list[tuple[int, str, datetime]]:
        """(author_id, text, created_at) of these authors' mentions since `since`: what
        the noise stage compares a batch with to spot an author repeating one text. Read
        through their customers' (customer_id, created_at) index, the authors' rows kept:
        an index of its own would cost every inserted mention more than this costs."""
        author_ids = {link.author_id for link in authors}
        if not author_ids:
            return []
        customer_ids = {link.customer_id for link in authors}
        rows = await self.session.execute(
            select(Mention.author_id, Mention.text, Mention.created_at)
            .where(routing_store.mentions_of(self.session, Mention.customer_id, customer_ids,
                                             Mention.created_at >= since)))
        return [tuple(row) for row in rows if row[0] in author_ids]

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
        return await routing_store.last_assigned(self.session)

    async def link_authors(
        self, authors: Iterable[tuple[str, RawAuthor]], now: datetime
    ) -> dict[tuple[str, str], AuthorLink]:
        """Find or create each author and the customer behind it, keyed by (channel, handle).

        Set-based: a few statements for the whole batch, whatever its size. New authors
        are decided one at a time in key order (the order rows are written in, so two
        writers on PostgreSQL never deadlock), each seeing what the ones before it
        claimed (see `plan_new_authors`); they join an existing customer only on a
        strong identifier. Inserts tolerate a concurrent writer creating the same row.
        """
        wanted = {(channel, author.handle): author for channel, author in authors}
        links = await self._known_authors(wanted)
        new = sorted((key, author) for key, author in wanted.items() if key not in links)
        if new:
            links.update(await self._new_authors(new, now))
        return links

    def _identities(self, channel: str, author: RawAuthor) -> list[Identity]:
        """The author's strong identifiers, normalised; an unreadable phone is left out."""
        found = [normalise("handle", author.handle, channel)]
        for kind, value in (("email", author.email), ("phone", author.phone)):
            if value:
                try:
                    found.append(normalise(kind, value, region=self.phone_region))
                except BadIdentity:
                    continue
        return found

    async def _known_authors(self, wanted: dict[tuple[str, str], RawAuthor]
                             ) -> dict[tuple[str, str], AuthorLink]:
        """Links of the authors already stored; names and reach brought up to date."""
        links: dict[tuple[str, str], AuthorLink] = {}
        changed = []
        for (channel,), handles in self._grouped(wanted):
            rows = await self.session.execute(
                select(Author.id, Author.handle, Author.customer_id,
                       Author.name, Author.followers, Author.email, Customer.segment)
                .join(Customer, Customer.id == Author.customer_id)
                .where(Author.channel == channel, self._one_of(Author.handle, handles)))
            for author_id, handle, customer_id, name, followers, email, segment in rows:
                key = (channel, handle)
                links[key] = AuthorLink(author_id, customer_id, segment)
                fresh = _refreshed(author_id, (name, followers, email), wanted[key])
                if fresh is not None:
                    changed.append(fresh)
        if changed:
            table = Author.__table__
            await self.session.execute(
                update(table).where(table.c.id == bindparam("author_id"))
                .values(name=bindparam("new_name"), followers=bindparam("new_followers"),
                        email=bindparam("new_email")),
                changed)
        return links

    async def _new_authors(self, new: list[tuple[tuple[str, str], RawAuthor]], now: datetime
                           ) -> dict[tuple[str, str], AuthorLink]:
        identities = {key: self._identities(key[0], author) for key, author in new}
        wanted = {i for found in identities.values() for i in found}
        held, identity_ids = await self._identity_holders(wanted)
        by_email = await self._customers_by_email(
            {v for k, _, v in wanted if k == "email"})
        plans = plan_new_authors(new, identities, held, by_email)
        await self._create_customers(plans, now)
        author_ids = await self._insert_authors(plans)
        links: dict[tuple[str, str], AuthorLink] = {}
        for plan in plans:
            assert isinstance(plan.customer, int)
            if plan.key in author_ids:
                links[plan.key] = AuthorLink(author_ids[plan.key], plan.customer, plan.segment)
        raced = [plan for plan in plans if plan.key not in author_ids]
        if raced:  # a concurrent writer stored these authors first: theirs stands
            links.update(await self._stored_links(raced))
        stored = [plan for plan in plans if plan.key in author_ids]
        claimed = await self._claim(stored, now)
        identity_ids.update(claimed)
        await self._record_links(stored, author_ids, claimed, identity_ids, now)
        return links

    async def _identity_holders(self, identities: set[Identity]
                                ) -> tuple[dict[Identity, tuple[int, str | None]],
                                           dict[Identity, int]]:
        """Who holds each of these identities (customer, segment), and the rows' ids."""
        held: dict[Identity, tuple[int, str | None]] = {}
        ids: dict[Identity, int] = {}
        for (kind, channel), values in self._grouped(identities):
            rows = await self.session.execute(
                select(CustomerIdentity.id, CustomerIdentity.kind, CustomerIdentity.channel,
                       CustomerIdentity.value, Customer.id, Customer.segment)
                .join(Customer, Customer.id == CustomerIdentity.customer_id)
                .where(CustomerIdentity.kind == kind, CustomerIdentity.channel == channel,
                       self._one_of(CustomerIdentity.value, values)))
            for row_id, kind, channel, value, customer_id, segment in rows:
                held[(kind, channel, value)] = (customer_id, segment)
                ids[(kind, channel, value)] = row_id
        return held, ids

    async def _customers_by_email(self, emails: set[str]
                                  ) -> dict[str, tuple[int, str | None]]:
        if not emails:
            return {}
        rows = await self.session.execute(
            select(Customer.email, Customer.id, Customer.segment)
            .where(self._one_of(Customer.email, sorted(emails))))
        return {email: (customer_id, segment) for email, customer_id, segment in rows}

    async def _create_customers(self, plans: list[NewAuthor], now: datetime) -> None:
        """Give every planned new customer its id. One whose e-mail a concurrent writer
        took meanwhile becomes a link to that writer's customer (`auto:email`)."""
        new = list({id(p.customer): p.customer for p in plans
                    if isinstance(p.customer, NewCustomer)}.values())
        table = Customer.__table__
        with_email = sorted((c for c in new if c.email), key=lambda c: c.email or "")
        if with_email:
            rows = await self._insert_new(table, [
                {"display_name": c.display_name, "email": c.email, "created_at": now}
                for c in with_email], ["email"])
            made = {email: customer_id for customer_id, email in rows}
            for customer in with_email:
                customer.id = made.get(customer.email)  # type: ignore[arg-type]
            lost = {c.email for c in with_email if c.id is None}
            if lost:
                taken = await self._customers_by_email(lost)  # type: ignore[arg-type]
                for plan in plans:
                    customer = plan.customer
                    if isinstance(customer, NewCustomer) and customer.email in taken:
                        plan.customer, plan.segment = taken[customer.email]
                        plan.actor = "auto:email"
        without = [c for c in new if not c.email]
        if without:
            ids = await self._ordered_ids(table, [
                {"display_name": c.display_name, "email": None, "created_at": now}
                for c in without])
            for customer, customer_id in zip(without, ids, strict=True):
                customer.id = customer_id
        for plan in plans:
            if isinstance(plan.customer, NewCustomer):
                plan.customer = plan.customer.id  # type: ignore[assignment]

    async def _ordered_ids(self, table: Any, rows: list[dict[str, Any]]) -> list[int]:
        """The new rows' ids in the order given. PostgreSQL orders RETURNING itself (a
        sentinel column SQLAlchemy adds). SQLite hands out ascending rowids in VALUES
        order under its single writer, so sorting them is the order; SQLAlchemy does not
        assume that and would insert row by row."""
        if self._postgres:
            result = await self.session.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
            return list(result.scalars())
        return sorted(row_id for row_id, in await insert_rows(
            self.session, table, rows, returning=["id"]))

    async def _insert_authors(self, plans: list[NewAuthor]) -> dict[tuple[str, str], int]:
        rows = await self._insert_new(Author.__table__, [
            {"channel": p.key[0], "handle": p.author.handle, "name": p.author.name,
             "followers": p.author.followers, "email": p.author.email,
             "customer_id": p.customer} for p in plans], ["channel", "handle"])
        return {(channel, handle): author_id for author_id, channel, handle in rows}

    async def _insert_new(self, table: Any, rows: list[dict[str, Any]], key: list[str]
                          ) -> Any:
        """Insert the rows whose `key` is not taken yet; (id, *key) of those inserted."""
        if self._postgres:
            return await self.session.execute(*_unnest_insert(
                table, rows, f"ON CONFLICT ({', '.join(key)}) DO NOTHING "
                f"RETURNING id, {', '.join(key)}"))
        return await insert_rows(self.session, table, rows,
                                 f"ON CONFLICT ({', '.join(key)}) DO NOTHING",
                                 ["id", *key])

    async def _stored_links(self, plans: list[NewAuthor]) -> dict[tuple[str, str], AuthorLink]:
        rows = await self.session.execute(
            select(Author.id, Author.channel, Author.handle, Author.customer_id)
            .where(tuple_(Author.channel, Author.handle).in_([p.key for p in plans])))
        segment = {p.key: p.segment for p in plans}
        return {(channel, handle): AuthorLink(author_id, customer_id, segment[(channel, handle)])
                for author_id, channel, handle, customer_id in rows}

    async def _claim(self, plans: list[NewAuthor], now: datetime) -> dict[Identity, int]:
        """Insert the identities each new author claimed; those a concurrent writer holds
        already are left out (they stay theirs)."""
        rows = sorted(({"customer_id": p.customer, "kind": kind, "channel": channel,
                        "value": value, "created_at": now}
                       for p in plans for kind, channel, value in p.claims),
                      key=lambda row: (row["kind"], row["channel"], row["value"]))
        if not rows:
            return {}
        result = await self._insert_new(CustomerIdentity.__table__, rows,
                                        ["kind", "channel", "value"])
        return {(kind, channel, value): row_id for row_id, kind, channel, value in result}

    async def _record_links(self, plans: list[NewAuthor], author_ids: dict[tuple[str, str], int],
                            claimed: dict[Identity, int], identity_ids: dict[Identity, int],
                            now: datetime) -> None:
        """The audit of each automatic link, with what undoing it needs."""
        records = []
        for plan in plans:
            if plan.actor is None:
                continue
            handle = plan.identities[0]
            if handle not in identity_ids:  # held by a concurrent writer's row
                identity_ids[handle] = await identity_id(self.session, *handle)
            records.append({
                "action": "link", "customer_id": plan.customer, "identity": label(*handle),
                "actor": plan.actor, "identity_id": identity_ids[handle], "at": now,
                "undo": {"authors": [author_ids[plan.key]],
                         "identities": [claimed[i] for i in plan.claims if i in claimed]}})
        if records and self._postgres:
            await self.session.execute(insert(CustomerLink.__table__), records)
        elif records:
            await insert_rows(self.session, CustomerLink.__table__, records)

    async def insert_mentions(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """external_id → new id; rows whose (source, external_id) exists already (a
        concurrent writer won the race) are left out. SQLite: a few multi-row
        INSERT … RETURNING statements with the values in driver form
        (`driver_rows`); PostgreSQL: one statement over column arrays."""
        if not rows:
            return {}
        table = Mention.__table__
        if self._postgres:
            result = await self.session.execute(*_unnest_insert(
                table, rows, "ON CONFLICT (source, external_id) DO NOTHING "
                "RETURNING id, external_id"))
        else:
            result = await insert_rows(
                self.session, table, rows, "ON CONFLICT (source, external_id) DO NOTHING",
                ["id", "external_id"])
        return {external_id: mention_id for mention_id, external_id in result}

    async def add_events(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        if self._postgres:  # data as the JSON column would write it (`json.dumps`)
            statement, arrays = _unnest_insert(MentionEvent.__table__, events, "")
            json_text = json_encoder()
            arrays["data"] = [json_text(data) for data in arrays["data"]]
            await self.session.execute(statement, arrays)
        else:
            await insert_rows(self.session, MentionEvent.__table__, events)

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
                    external_id=item.external_id[:200] if item.external_id else None,
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
