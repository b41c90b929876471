"""Call-centre contacts: which customer a call belongs to, and the call's row.

A caller is linked the way the pipeline links an account (`IngestTx.link_authors`): the
phone number is an account on channel `phone`, joined to the customer who holds that
number, else to a new customer with it. So a call, a callback mention and a tweet from
someone whose CRM record has the number all end up on one timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import RawAuthor
from listener.models import CustomerContact
from listener.store.actions import Conflict
from listener.store.customers import add_identity, live_customer
from listener.store.ingest import IngestTx

PHONE_CHANNEL = "phone"


@dataclass(frozen=True)
class Call:
    """One call as the export or the API gave it, already checked and normalised."""

    external_id: str
    started_at: datetime
    phone: str | None = None  # E.164
    name: str = ""
    duration_seconds: int | None = None
    agent: str | None = None
    topic: str | None = None
    summary: str = ""
    outcome: str | None = None
    callback: bool = False  # the outcome promised a callback


@dataclass(frozen=True)
class Caller:
    customer_id: int
    author_id: int | None


async def find(session: AsyncSession, external_id: str) -> CustomerContact | None:
    return await session.scalar(
        select(CustomerContact).where(CustomerContact.external_id == external_id))


async def link_caller(session: AsyncSession, call: Call, customer_id: int | None,
                      actor: str, now: datetime, region: str) -> Caller:
    """The customer (and phone account) the call belongs to. Given a customer, the phone
    becomes theirs when nobody holds it; held by someone else, it is a Conflict (two
    records of one person are merged, never silently re-linked)."""
    if customer_id is not None:
        await live_customer(session, customer_id)
        if call.phone:
            await add_identity(session, customer_id, ("phone", "", call.phone), actor, now)
    if not call.phone:
        assert customer_id is not None, "a call without a phone needs its customer"
        return Caller(customer_id, None)
    account = RawAuthor(handle=call.phone, name=call.name, phone=call.phone)
    links = await IngestTx(session, region).link_authors([(PHONE_CHANNEL, account)], now)
    link = links[(PHONE_CHANNEL, call.phone)]
    if customer_id is not None and link.customer_id != customer_id:
        raise Conflict(f"phone {call.phone} is an account of customer {link.customer_id}; "
                       f"if they are the same person, merge them: POST /api/v1/customers/"
                       f'{customer_id}/merge {{"from": {link.customer_id}}}')
    return Caller(link.customer_id, link.author_id)


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


async def add(session: AsyncSession, call: Call, caller: Caller, mention_id: int | None,
              now: datetime) -> tuple[CustomerContact, bool]:
    """(the call's row, whether this made it); a concurrent writer of the same call wins
    quietly, so a retried request or import never stores a call twice."""
    new_id = (await session.execute(
        _insert(session)(CustomerContact).values(
            external_id=call.external_id, customer_id=caller.customer_id,
            author_id=caller.author_id, phone=call.phone, started_at=call.started_at,
            duration_seconds=call.duration_seconds, agent=call.agent, topic=call.topic,
            summary=call.summary, outcome=call.outcome, mention_id=mention_id,
            recorded_at=now)
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(CustomerContact.id)
    )).scalar_one_or_none()
    contact = await find(session, call.external_id)
    assert contact is not None
    return contact, new_id is not None
