"""The open queue as the dashboard pages through it: filters, one COUNT, one LIMITed page.

Ordered like the backlog drain (deadline, then priority, then id), so what an agent sees
first is what the router hands out first. Text search is case- and Turkish-insensitive on
SQLite and PostgreSQL alike (`listener.search_fold`): each mention stores its text, author
handle and name folded that way (`search_text`, written at ingest), so a search is one
plain substring test per open mention, with no join and no per-letter pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import Agent, Author, Customer, Mention
from listener.search_fold import fold
from listener.store.queries import PRIORITY_RANK, is_open, over_open, sla_state_condition

QUEUE_STATES = ("on_track", "at_risk", "breached", "none")  # none: no deadline applies


@dataclass(frozen=True)
class QueueFilter:
    channel: str | None = None
    source: str | None = None
    assignee: str | None = None  # an agent id
    unassigned: bool = False
    sla_state: str | None = None  # one of QUEUE_STATES
    lang: str | None = None
    segment: str | None = None  # the customer's segment
    text: str | None = None  # in the mention, the author's handle or name


@dataclass(frozen=True)
class QueueRow:
    mention: Mention
    author: Author | None
    segment: str | None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int  # open mentions matching the filter, on every page


def search_condition(text: str) -> ColumnElement[bool]:
    """The folded substring test (LIKE with %, _ and / escaped: they are literal)."""
    return Mention.search_text.contains(fold(text), autoescape=True)


def state_condition(state: str, now: Any) -> ColumnElement[bool]:
    if state == "none":
        return Mention.deadline_at.is_(None)
    return sla_state_condition(state, now)


def conditions(flt: QueueFilter, now: Any) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = [is_open()]
    equal = ((Mention.channel, flt.channel), (Mention.source, flt.source),
             (Mention.assignee, flt.assignee), (Mention.lang, flt.lang),
             (Customer.segment, flt.segment))
    found += [column == value for column, value in equal if value]
    if flt.unassigned:
        found.append(Mention.assignee.is_(None))
    if flt.sla_state:
        found.append(state_condition(flt.sla_state, now))
    if flt.text:
        found.append(search_condition(flt.text))
    return found


def _joined(query: Any, flt: QueueFilter | None = None) -> Any:
    """Authors and customers joined in; with a filter, only those it reads from."""
    query = query.select_from(Mention)
    if flt is None:
        query = query.outerjoin(Author, Author.id == Mention.author_id)
    if flt is None or flt.segment:
        query = query.outerjoin(Customer, Customer.id == Mention.customer_id)
    return query


async def open_queue(session: AsyncSession, flt: QueueFilter, now: Any, offset: int = 0,
                     limit: int = 50) -> QueuePage:
    """One page of open mentions, most urgent deadline first, and how many match in all.
    The page's ids come from the open mentions' index alone (a text search reads the
    rows once, counting them on the way); only the page's own rows are then read in full."""
    where = and_(*conditions(flt, now))
    urgent_first = (Mention.deadline_at.is_(None), Mention.deadline_at, PRIORITY_RANK,
                    Mention.id)
    counted = (func.count().over(),) if flt.text else ()
    page = (await session.execute(_joined(select(Mention.id, *counted), flt).where(where)
                                  .order_by(*urgent_first).offset(offset).limit(limit))).all()
    ids = [row[0] for row in page]
    if page and flt.text:
        total = page[0][1]
    elif not page and offset == 0:
        total = 0
    else:
        total = await session.scalar(_joined(select(func.count()), flt).where(where)) or 0
    found = {m.id: QueueRow(m, a, seg) for m, a, seg in (await session.execute(
        _joined(select(Mention, Author, Customer.segment)).where(Mention.id.in_(ids)))).all()}
    return QueuePage([found[i] for i in ids if i in found], total)


async def queue_choices(session: AsyncSession) -> dict[str, list[str]]:
    """What the filter form offers: values present among open mentions, every customer
    segment, and the active agents."""
    choices: dict[str, list[str]] = {}
    for name, column in (("channel", Mention.channel), ("source", Mention.source),
                         ("lang", Mention.lang)):
        values = await session.scalars(over_open(select(column)).group_by(column))
        choices[name] = sorted(value for value in values if value is not None)
    choices["segment"] = await distinct_segments(session)
    choices["agent"] = list(await session.scalars(
        select(Agent.id).where(Agent.active).order_by(Agent.id)))
    return choices


async def distinct_segments(session: AsyncSession) -> list[str]:
    """Every customer segment, one index seek per segment (a loose index scan on
    ix_customers_segment) rather than a pass over every customer."""
    first = select(func.min(Customer.segment)).scalar_subquery()
    found = select(first.label("segment")).cte("found", recursive=True)
    following = select(func.min(Customer.segment)).where(
        Customer.segment > found.c.segment).scalar_subquery()
    found = found.union_all(select(following).where(found.c.segment.is_not(None)))
    values = await session.scalars(select(found.c.segment).where(found.c.segment.is_not(None)))
    return list(values)


async def agent_status(session: AsyncSession, agent_id: str) -> str | None:
    """"available" or "away"; None when no configured agent has this id."""
    return await session.scalar(select(Agent.status).where(Agent.id == agent_id))
