"""Customers across channels: identities, merging and splitting (each recorded in
`customer_links` with what undoing it needs), notes and offers, and the timeline.

A merge moves rows and remembers their ids; undo moves exactly those back (only the ones
still where the merge put them), so a later unrelated change is not clobbered.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from listener.identities import BadIdentity, label, normalise
from listener.models import (
    Author,
    Customer,
    CustomerContact,
    CustomerIdentity,
    CustomerLink,
    CustomerNote,
    Mention,
    MentionEvent,
)
from listener.store.actions import Conflict, Invalid, NotFound
from listener.store.queries import decode_cursor, encode_cursor

Identity = tuple[str, str, str]  # (kind, channel, value), normalised
NOTE_KINDS = ("note", "offer")
RESPONSE_EVENTS = ("responded", "replied")
TIMELINE_RANK = {"mention": 0, "response": 1, "note": 2, "call": 3}


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


async def claim_identities(session: AsyncSession, customer_id: int,
                           identities: list[Identity], now: datetime) -> list[int]:
    """Give the customer these identities where nobody holds them yet; returns the ids of
    the rows it created (a value someone else holds stays theirs)."""
    created = []
    for kind, channel, value in identities:
        new_id = (await session.execute(
            _insert(session)(CustomerIdentity)
            .values(customer_id=customer_id, kind=kind, channel=channel, value=value,
                    created_at=now)
            .on_conflict_do_nothing(index_elements=["kind", "channel", "value"])
            .returning(CustomerIdentity.id)
        )).scalar_one_or_none()
        if new_id is not None:
            created.append(new_id)
    return created


async def identity_id(session: AsyncSession, kind: str, channel: str, value: str) -> int | None:
    return await session.scalar(select(CustomerIdentity.id).where(
        CustomerIdentity.kind == kind, CustomerIdentity.channel == channel,
        CustomerIdentity.value == value))


async def identity_owner(session: AsyncSession, identity: Identity) -> CustomerIdentity | None:
    kind, channel, value = identity
    return await session.scalar(select(CustomerIdentity).where(
        CustomerIdentity.kind == kind, CustomerIdentity.channel == channel,
        CustomerIdentity.value == value))


async def live_customer(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist")
    if customer.merged_into is not None:
        raise Conflict(f"customer {customer_id} was merged into customer "
                       f"{customer.merged_into}; use that one")
    return customer


def _record(session: AsyncSession, action: str, customer_id: int, actor: str, now: datetime,
            other: int | None = None, identity: CustomerIdentity | None = None,
            undo: dict[str, Any] | None = None) -> CustomerLink:
    link = CustomerLink(action=action, customer_id=customer_id, other_customer_id=other,
                        identity_id=identity.id if identity else None,
                        identity=label(identity.kind, identity.channel, identity.value)
                        if identity else None, actor=actor, at=now, undo=undo)
    session.add(link)
    return link


async def add_identity(session: AsyncSession, customer_id: int, identity: Identity,
                       actor: str, now: datetime) -> CustomerLink | None:
    """Link an identity by hand. One held by another customer is a Conflict: that is two
    records of one person, which a merge (undoable) joins, not a silent move."""
    await live_customer(session, customer_id)
    held = await identity_owner(session, identity)
    if held is not None:
        if held.customer_id == customer_id:
            return None
        raise Conflict(
            f"{label(*identity)} belongs to customer {held.customer_id}; if they are the same "
            f"person, merge them: POST /api/v1/customers/{customer_id}/merge "
            f'{{"from": {held.customer_id}}}')
    row = CustomerIdentity(customer_id=customer_id, kind=identity[0], channel=identity[1],
                           value=identity[2], created_at=now)
    session.add(row)
    await session.flush()
    link = _record(session, "link", customer_id, actor, now, identity=row,
                   undo={"identities": [row.id]})
    await session.flush()
    return link


async def _move(session: AsyncSession, model: Any, ids: list[int], to: int) -> None:
    if ids:
        await session.execute(update(model).where(model.id.in_(ids)).values(customer_id=to))


async def _ids(session: AsyncSession, model: Any, *where: Any) -> list[int]:
    return list(await session.scalars(select(model.id).where(*where).order_by(model.id)))


async def merge(session: AsyncSession, into_id: int, from_id: int, actor: str,
                now: datetime) -> CustomerLink:
    """Everything of `from` (identities, accounts, mentions, notes) moves to `into`; `from`
    stays as an empty record pointing at `into`, so the merge can be undone."""
    if into_id == from_id:
        raise Invalid("a customer cannot be merged into itself")
    into = await live_customer(session, into_id)
    source = await live_customer(session, from_id)
    moved = {
        "identities": await _ids(session, CustomerIdentity,
                                 CustomerIdentity.customer_id == from_id),
        "authors": await _ids(session, Author, Author.customer_id == from_id),
        "mentions": await _ids(session, Mention, Mention.customer_id == from_id),
        "notes": await _ids(session, CustomerNote, CustomerNote.customer_id == from_id),
        "contacts": await _ids(session, CustomerContact,
                               CustomerContact.customer_id == from_id),
    }
    undo: dict[str, Any] = {**moved, "from_email": source.email,
                            "into_segment": into.segment,
                            "into_lifetime_value": into.lifetime_value}
    for key, model in (("identities", CustomerIdentity), ("authors", Author),
                       ("mentions", Mention), ("notes", CustomerNote),
                       ("contacts", CustomerContact)):
        await _move(session, model, moved[key], into_id)
    source.merged_into = into_id
    if source.email:
        source.email = None
        await session.flush()
        into.email = into.email or undo["from_email"]
    into.segment = into.segment or source.segment
    if into.lifetime_value is None:
        into.lifetime_value = source.lifetime_value
    link = _record(session, "merge", into_id, actor, now, other=from_id, undo=undo)
    await session.flush()
    return link


async def split(session: AsyncSession, customer_id: int, ident_id: int, actor: str,
                now: datetime) -> CustomerLink:
    """One identity, and for a handle the account and its mentions, becomes a customer of
    its own: for a wrong link or a wrong merge found later."""
    customer = await live_customer(session, customer_id)
    identity = await session.get(CustomerIdentity, ident_id)
    if identity is None or identity.customer_id != customer_id:
        raise NotFound(f"customer {customer_id} has no identity {ident_id}")
    others = await _ids(session, CustomerIdentity, CustomerIdentity.customer_id == customer_id,
                        CustomerIdentity.id != ident_id)
    if not others:
        raise Invalid(f"identity {ident_id} is customer {customer_id}'s only one; "
                      "nothing to split off")
    authors = await _authors_of(session, customer_id, identity)
    name = authors[0].name if authors and authors[0].name else identity.value
    new = Customer(display_name=name, created_at=now)
    session.add(new)
    await session.flush()
    return await _split_off(session, customer, new, [identity.id], [a.id for a in authors],
                            actor, now, identity)


async def _authors_of(session: AsyncSession, customer_id: int,
                      identity: CustomerIdentity) -> list[Author]:
    if identity.kind != "handle":
        return []
    rows = await session.scalars(select(Author).where(
        Author.customer_id == customer_id, Author.channel == identity.channel))
    return [a for a in rows if normalise("handle", a.handle, a.channel)[2] == identity.value]


async def _split_off(session: AsyncSession, customer: Customer, new: Customer,
                     identities: list[int], authors: list[int], actor: str, now: datetime,
                     identity: CustomerIdentity | None) -> CustomerLink:
    mentions = await _ids(session, Mention, Mention.customer_id == customer.id,
                          Mention.author_id.in_(authors)) if authors else []
    calls = await _ids(session, CustomerContact, CustomerContact.customer_id == customer.id,
                       CustomerContact.author_id.in_(authors)) if authors else []
    emails = list(await session.scalars(select(CustomerIdentity.value).where(
        CustomerIdentity.id.in_(identities), CustomerIdentity.kind == "email")))
    undo: dict[str, Any] = {"identities": identities, "authors": authors,
                            "mentions": mentions, "contacts": calls, "email": None}
    await _move(session, CustomerIdentity, identities, new.id)
    await _move(session, Author, authors, new.id)
    await _move(session, Mention, mentions, new.id)
    await _move(session, CustomerContact, calls, new.id)
    if customer.email and customer.email in emails:
        undo["email"] = customer.email
        customer.email = None
        await session.flush()
        new.email = undo["email"]
    link = _record(session, "split", new.id, actor, now, other=customer.id, identity=identity,
                   undo=undo)
    await session.flush()
    return link


async def undo(session: AsyncSession, link_id: int, actor: str, now: datetime) -> CustomerLink:
    """Reverse one recorded link, merge or split; the undo is recorded too."""
    link = await session.get(CustomerLink, link_id)
    if link is None:
        raise NotFound(f"customer link {link_id} does not exist")
    if link.undone_at is not None:
        raise Conflict(f"customer link {link_id} was already undone")
    if link.action == "undo":
        raise Invalid("an undo cannot be undone; link, merge or split again instead")
    data = link.undo or {}
    if link.action == "merge":
        assert link.other_customer_id is not None
        await _move_back(session, data, link.customer_id, link.other_customer_id)
        source = await session.get(Customer, link.other_customer_id)
        into = await session.get(Customer, link.customer_id)
        assert source is not None and into is not None
        source.merged_into = None
        if data.get("from_email") and into.email == data["from_email"]:
            into.email = None
            await session.flush()
            source.email = data["from_email"]
        into.segment = data.get("into_segment")
        into.lifetime_value = data.get("into_lifetime_value")
    elif link.action == "split":
        assert link.other_customer_id is not None
        await _move_back(session, data, link.customer_id, link.other_customer_id)
        new = await session.get(Customer, link.customer_id)
        original = await session.get(Customer, link.other_customer_id)
        assert new is not None and original is not None
        new.merged_into = original.id
        if data.get("email") and new.email == data["email"]:
            new.email = None
            await session.flush()
            original.email = data["email"]
    elif data.get("authors"):  # an automatic link of a new account: it becomes its own
        customer = await live_customer(session, link.customer_id)
        first = await session.get(Author, data["authors"][0])
        new = Customer(display_name=(first.name or first.handle) if first else "",
                       created_at=now)
        session.add(new)
        await session.flush()
        handle = await session.get(CustomerIdentity, link.identity_id) \
            if link.identity_id else None
        ids = list(data.get("identities", []))
        if handle is not None and handle.id not in ids:
            ids.append(handle.id)
        await _split_off(session, customer, new, ids, data["authors"], actor, now, handle)
    else:  # an identity linked by hand or by the CRM import: unlink it
        for ident in data.get("identities", []):
            row = await session.get(CustomerIdentity, ident)
            if row is not None and row.customer_id == link.customer_id:
                await session.delete(row)
    link.undone_at = now
    record = _record(session, "undo", link.customer_id, actor, now,
                     other=link.other_customer_id, undo={"undid": link.id})
    await session.flush()
    return record


async def _move_back(session: AsyncSession, data: dict[str, Any], now_at: int,
                     back_to: int) -> None:
    for key, model in (("identities", CustomerIdentity), ("authors", Author),
                       ("mentions", Mention), ("notes", CustomerNote),
                       ("contacts", CustomerContact)):
        ids = data.get(key) or []
        if ids:
            await session.execute(update(model).where(
                model.id.in_(ids), model.customer_id == now_at).values(customer_id=back_to))


async def add_note(session: AsyncSession, customer_id: int, kind: str, text: str,
                   author: str | None, now: datetime) -> CustomerNote:
    await live_customer(session, customer_id)
    note = CustomerNote(customer_id=customer_id, kind=kind, text=text, author=author, at=now)
    session.add(note)
    await session.flush()
    return note


# --- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerPage:
    rows: list[Customer]
    next_cursor: str | None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(session: AsyncSession, q: str | None, segment: str | None, limit: int,
                 cursor: str | None, region: str = "TR") -> CustomerPage:
    """By name, e-mail, external id, or any identity (a handle, a phone in any format)."""
    query = select(Customer).where(Customer.merged_into.is_(None))
    if segment:
        query = query.where(Customer.segment == segment)
    if q:
        pattern = _like(q.strip().lstrip("@").lower())
        matches = select(CustomerIdentity.customer_id).where(
            CustomerIdentity.value.ilike(pattern, escape="\\"))
        conditions = [Customer.display_name.ilike(_like(q.strip()), escape="\\"),
                      Customer.external_id == q.strip(), Customer.id.in_(matches)]
        try:
            phone = normalise("phone", q, region=region)[2]
            conditions.append(Customer.id.in_(select(CustomerIdentity.customer_id).where(
                CustomerIdentity.kind == "phone", CustomerIdentity.value == phone)))
        except BadIdentity:
            pass
        query = query.where(or_(*conditions))
    if cursor:
        query = query.where(Customer.id < decode_cursor(cursor))
    rows = list(await session.scalars(query.order_by(Customer.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return CustomerPage(rows, encode_cursor(rows[-1].id) if more and rows else None)


@dataclass
class CustomerDetail:
    customer: Customer
    identities: list[CustomerIdentity]
    authors: list[Author]
    history: list[Mention]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None


def encode_timeline_cursor(at: datetime, kind: str, item_id: int) -> str:
    text = json.dumps([at.isoformat(), TIMELINE_RANK[kind], item_id])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_timeline_cursor(cursor: str) -> tuple[datetime, int, int]:
    """Raises ValueError on anything this API did not hand out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, rank, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        moment = datetime.fromisoformat(at)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a timeline cursor") from exc
    if moment.tzinfo is None or not isinstance(rank, int) or not isinstance(item_id, int):
        raise ValueError("not a timeline cursor")
    return moment, rank, item_id


def _before(at: Any, ident: Any, rank: int, cursor: tuple[datetime, int, int] | None) -> Any:
    """Rows after the cursor in (time, kind, id) descending order."""
    if cursor is None:
        return and_(True)
    c_at, c_rank, c_id = cursor
    if rank < c_rank:
        return at <= c_at
    if rank > c_rank:
        return at < c_at
    return or_(at < c_at, and_(at == c_at, ident < c_id))


async def timeline(session: AsyncSession, customer_id: int, limit: int = 50,
                   cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Every mention, response, note or offer and call of the customer, newest first."""
    after = decode_timeline_cursor(cursor) if cursor else None
    items: list[tuple[datetime, int, int, dict[str, Any]]] = []
    mentions = await session.scalars(
        select(Mention).where(Mention.customer_id == customer_id,
                              _before(Mention.created_at, Mention.id, 0, after))
        .order_by(Mention.created_at.desc(), Mention.id.desc()).limit(limit + 1))
    for m in mentions:
        items.append((m.created_at, 0, m.id, {
            "type": "mention", "at": m.created_at, "id": m.id, "mention_id": m.id,
            "channel": m.channel, "source": m.source, "text": m.text, "url": m.url,
            "status": m.status, "actor": None}))
    responses = await session.execute(
        select(MentionEvent, Mention.channel)
        .join(Mention, Mention.id == MentionEvent.mention_id)
        .where(Mention.customer_id == customer_id, MentionEvent.kind.in_(RESPONSE_EVENTS),
               _before(MentionEvent.at, MentionEvent.id, 1, after))
        .order_by(MentionEvent.at.desc(), MentionEvent.id.desc()).limit(limit + 1))
    for event, channel in responses:
        data = event.data or {}
        items.append((event.at, 1, event.id, {
            "type": "response", "at": event.at, "id": event.id, "mention_id": event.mention_id,
            "channel": channel, "source": None,
            "text": data.get("text") or data.get("note"), "url": data.get("url"),
            "status": event.kind, "actor": event.actor}))
    notes = await session.scalars(
        select(CustomerNote).where(CustomerNote.customer_id == customer_id,
                                   _before(CustomerNote.at, CustomerNote.id, 2, after))
        .order_by(CustomerNote.at.desc(), CustomerNote.id.desc()).limit(limit + 1))
    for n in notes:
        items.append((n.at, 2, n.id, {
            "type": n.kind, "at": n.at, "id": n.id, "mention_id": None, "channel": None,
            "source": None, "text": n.text, "url": None, "status": None, "actor": n.author}))
    calls = await session.scalars(
        select(CustomerContact).where(
            CustomerContact.customer_id == customer_id,
            _before(CustomerContact.started_at, CustomerContact.id, 3, after))
        .order_by(CustomerContact.started_at.desc(), CustomerContact.id.desc())
        .limit(limit + 1))
    for call in calls:
        items.append((call.started_at, 3, call.id, {
            "type": "call", "at": call.started_at, "id": call.id,
            "mention_id": call.mention_id, "channel": "phone", "source": "calls",
            "text": call.summary or None, "url": None, "status": call.outcome,
            "actor": call.agent,
            "call": {"external_id": call.external_id, "phone": call.phone,
                     "duration_seconds": call.duration_seconds, "topic": call.topic}}))
    items.sort(key=lambda row: (row[0], row[1], row[2]), reverse=True)
    page = items[:limit]
    next_cursor = None
    if len(items) > limit and page:
        last = page[-1]
        kind = {rank: name for name, rank in TIMELINE_RANK.items()}[last[1]]
        next_cursor = encode_timeline_cursor(last[0], kind, last[2])
    return [row[3] for row in page], next_cursor


async def customer_detail(session: AsyncSession, customer_id: int, limit: int = 50,
                          cursor: str | None = None,
                          history_limit: int = 50) -> CustomerDetail | None:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return None
    identities = list(await session.scalars(select(CustomerIdentity).where(
        CustomerIdentity.customer_id == customer_id).order_by(CustomerIdentity.id)))
    authors = list(await session.scalars(
        select(Author).where(Author.customer_id == customer_id).order_by(Author.id)))
    history = list(await session.scalars(
        select(Mention).where(Mention.customer_id == customer_id)
        .order_by(Mention.created_at.desc()).limit(history_limit)))
    items, next_cursor = await timeline(session, customer_id, limit, cursor)
    return CustomerDetail(customer, identities, authors, history, items, next_cursor)


# --- CRM import ----------------------------------------------------------------------


@dataclass(frozen=True)
class CrmRecord:
    """One customer as the CRM knows them; identities already normalised."""

    external_id: str
    name: str = ""
    identities: tuple[Identity, ...] = ()
    segment: str | None = None
    lifetime_value: float | None = None
    notes: str | None = None


async def import_crm_record(session: AsyncSession, record: CrmRecord, now: datetime) -> str:
    """Create or update the customer with this external id ("created" / "updated").

    The CRM is an explicit link: an identity Listener already saw (an author's handle, an
    e-mail) that belongs to a customer Listener made by itself is merged in (`auto:crm`,
    undoable), so the CRM's segment applies to that account's next mention. An identity
    another CRM customer holds is a Conflict: the file contradicts itself or the CRM.
    """
    customer = await session.scalar(
        select(Customer).where(Customer.external_id == record.external_id))
    created = customer is None
    if customer is None:
        customer = Customer(display_name=record.name or record.external_id,
                            external_id=record.external_id, created_at=now)
        session.add(customer)
        await session.flush()
    elif customer.merged_into is not None:
        raise Conflict(f"customer {record.external_id} was merged into customer "
                       f"{customer.merged_into}; undo that merge or fix the CRM")
    for identity in (("crm", "", record.external_id), *record.identities):
        held = await identity_owner(session, identity)
        if held is None:
            row = CustomerIdentity(customer_id=customer.id, kind=identity[0],
                                   channel=identity[1], value=identity[2], created_at=now)
            session.add(row)
            await session.flush()
            if identity[0] != "crm":
                _record(session, "link", customer.id, "auto:crm", now, identity=row,
                        undo={"identities": [row.id]})
        elif held.customer_id != customer.id:
            other = await session.get(Customer, held.customer_id)
            assert other is not None
            if other.external_id:
                raise Conflict(f"{label(*identity)} belongs to CRM customer "
                               f"{other.external_id}")
            await merge(session, customer.id, other.id, "auto:crm", now)
    if record.name:
        customer.display_name = record.name
    if record.segment is not None:
        customer.segment = record.segment or None
    if record.lifetime_value is not None:
        customer.lifetime_value = record.lifetime_value
    email = next((v for k, _, v in record.identities if k == "email"), None)
    if email and customer.email is None and await session.scalar(
            select(Customer.id).where(Customer.email == email)) is None:
        customer.email = email
    if record.notes and await session.scalar(select(CustomerNote.id).where(
            CustomerNote.customer_id == customer.id, CustomerNote.author == "crm",
            CustomerNote.text == record.notes)) is None:
        session.add(CustomerNote(customer_id=customer.id, kind="note", text=record.notes,
                                 author="crm", at=now))
    await session.flush()
    return "created" if created else "updated"
