"""Reads and agent actions for the API and dashboard. SLA state is derived from the
stored times and `now`, so it is always current without a sweeper rewriting rows."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import (
    OPEN_STATUSES,
    STATUSES,
    Agent,
    Author,
    Customer,
    Mention,
    MentionEvent,
    OutboxAlert,
    SlaTally,
    SourceState,
)

SLA_STATES = ("on_track", "at_risk", "breached", "met", "missed")
SETTLED_STATUSES = tuple(s for s in STATUSES if s not in OPEN_STATUSES)
PRIORITY_RANK = case(
    {"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=Mention.priority, else_=2
)


def is_open() -> ColumnElement[bool]:
    """`status IN ('new', 'assigned')` with the values written out, exactly as the partial
    index ix_mentions_open names them: with bound parameters neither SQLite nor a
    PostgreSQL generic plan could tell the index applies."""
    return Mention.status.in_([literal_column(f"'{status}'") for status in OPEN_STATUSES])


def sla_state_condition(state: str, now: datetime) -> ColumnElement[bool]:
    responded = Mention.first_response_at.is_not(None)
    has_deadline = Mention.deadline_at.is_not(None)
    late = Mention.deadline_at <= now
    risky = and_(Mention.at_risk_at.is_not(None), Mention.at_risk_at <= now)
    conditions = {
        "met": and_(has_deadline, responded, Mention.first_response_at <= Mention.deadline_at),
        "missed": and_(has_deadline, responded, Mention.first_response_at > Mention.deadline_at),
        "breached": and_(has_deadline, ~responded, late),
        "at_risk": and_(has_deadline, ~responded, ~late, risky),
        "on_track": and_(has_deadline, ~responded, ~late, ~risky),
    }
    return conditions[state]


def sla_state_expression(now: datetime) -> ColumnElement[Any]:
    return case(*((sla_state_condition(s, now), s) for s in SLA_STATES), else_=None)


@dataclass(frozen=True)
class MentionFilter:
    status: str | None = None
    channel: str | None = None
    source: str | None = None
    assignee: str | None = None
    sla_state: str | None = None
    q: str | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class MentionPage:
    rows: list[tuple[Mention, Author | None]]
    next_cursor: str | None


def encode_cursor(mention_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{mention_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Raises ValueError on anything that is not a cursor this API handed out."""
    padded = cursor + "=" * (-len(cursor) % 4)
    text = base64.urlsafe_b64decode(padded.encode()).decode()
    number = text.removeprefix("id:")
    if number == text or not (number.isascii() and number.isdigit()) or len(number) > 19 \
            or int(number) >= 2**63:  # beyond a 64-bit id: no page of ours ends there
        raise ValueError("not a cursor")
    return int(number)


def _mention_query() -> Any:
    return select(Mention, Author).outerjoin(Author, Author.id == Mention.author_id)


async def list_mentions(session: AsyncSession, flt: MentionFilter, now: datetime) -> MentionPage:
    query = _mention_query()
    if flt.status:
        query = query.where(Mention.status == flt.status)
    if flt.channel:
        query = query.where(Mention.channel == flt.channel)
    if flt.source:
        query = query.where(Mention.source == flt.source)
    if flt.assignee:
        query = query.where(Mention.assignee == flt.assignee)
    if flt.sla_state:
        query = query.where(sla_state_condition(flt.sla_state, now))
    if flt.q:
        pattern = "%" + flt.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(Mention.text.ilike(pattern, escape="\\"), Author.handle.ilike(pattern, escape="\\"))
        )
    if flt.cursor:
        query = query.where(Mention.id < decode_cursor(flt.cursor))
    query = query.order_by(Mention.id.desc()).limit(flt.limit + 1)
    rows = [(m, a) for m, a in (await session.execute(query)).all()]
    more = len(rows) > flt.limit
    rows = rows[: flt.limit]
    return MentionPage(rows, encode_cursor(rows[-1][0].id) if more and rows else None)


async def queue(
    session: AsyncSession,
    now: datetime,
    limit: int = 200,
    assignee: str | None = None,
    channel: str | None = None,
    sla_state: str | None = None,
) -> list[tuple[Mention, Author | None]]:
    """The dashboard's work queue: open mentions, most urgent deadline first.
    `assignee=""` means the unassigned ones."""
    query = _mention_query().where(Mention.status.in_(OPEN_STATUSES))
    if assignee is not None:
        query = query.where(
            Mention.assignee == assignee if assignee else Mention.assignee.is_(None)
        )
    if channel:
        query = query.where(Mention.channel == channel)
    if sla_state in SLA_STATES:
        query = query.where(sla_state_condition(sla_state, now))
    query = query.order_by(
        Mention.deadline_at.is_(None), Mention.deadline_at, PRIORITY_RANK, Mention.id
    ).limit(limit)
    return [(m, a) for m, a in (await session.execute(query)).all()]


async def get_mention(
    session: AsyncSession, mention_id: int
) -> tuple[Mention, Author | None] | None:
    row = (await session.execute(_mention_query().where(Mention.id == mention_id))).first()
    return (row[0], row[1]) if row else None


async def get_customer(
    session: AsyncSession, customer_id: int, history_limit: int = 50
) -> tuple[Customer, list[Author], list[Mention]] | None:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return None
    authors = list(
        await session.scalars(
            select(Author).where(Author.customer_id == customer_id).order_by(Author.id)
        )
    )
    history = list(
        await session.scalars(
            select(Mention)
            .where(Mention.customer_id == customer_id)
            .order_by(Mention.created_at.desc())
            .limit(history_limit)
        )
    )
    return customer, authors, history


async def open_counts(session: AsyncSession) -> dict[str, int]:
    """Open mentions per agent: the load routing balances and max_open caps."""
    rows = await session.execute(
        over_open(select(Mention.assignee, func.count()))
        .where(Mention.assignee.is_not(None))
        .group_by(Mention.assignee)
    )
    return {agent: count for agent, count in rows}


async def list_agents(session: AsyncSession) -> list[tuple[Agent, int]]:
    counts = await open_counts(session)
    agents = await session.scalars(select(Agent).where(Agent.active).order_by(Agent.id))
    return [(agent, counts.get(agent.id, 0)) for agent in agents]


def over_open(query: Any) -> Any:
    """The query limited to open mentions, which ix_mentions_open answers alone."""
    return query.where(is_open())


def state_counts(now: datetime) -> Any:
    """Mentions per status, channel and SLA state as of `now`, and the unassigned new ones,
    in one pass: conditional counts grouped in the order of ix_mentions_open (no sort)."""
    per_state = [func.count(case((sla_state_condition(state, now), 1))) for state in SLA_STATES]
    unassigned = func.count(case((and_(Mention.status == "new", Mention.assignee.is_(None)), 1)))
    return (select(Mention.channel, func.count(), unassigned, *per_state)
            .group_by(Mention.status, Mention.channel))


async def states_by_channel(session: AsyncSession, query: Any) -> dict[tuple[str, str], int]:
    """`state_counts` as {(channel, state): n}; state "none" counts those without a
    deadline, "unassigned" the new ones nobody has (also counted in their state)."""
    counts: Counter[tuple[str, str]] = Counter()
    for channel, total, unassigned, *numbers in await session.execute(query):
        counts.update({(channel, state): n for state, n in zip(SLA_STATES, numbers, strict=True)})
        counts[(channel, "none")] += total - sum(numbers)
        counts[(channel, "unassigned")] += unassigned
    return dict(counts)


async def open_by_channel_state(session: AsyncSession, now: datetime) -> dict[tuple[str, str], int]:
    return await states_by_channel(session, over_open(state_counts(now)))


async def oldest_open_by_channel(session: AsyncSession) -> dict[str, datetime]:
    rows = await session.execute(
        over_open(select(Mention.channel, func.min(Mention.created_at)))
        .group_by(Mention.status, Mention.channel)
    )
    oldest: dict[str, datetime] = {}
    for channel, created_at in rows:
        if created_at is not None:
            oldest[channel] = min(created_at, oldest.get(channel, created_at))
    return oldest


async def sla_summary(session: AsyncSession, now: datetime) -> dict[str, Any]:
    """SLA states of every mention with a deadline, counted without reading the history:
    open mentions live (their partial index), settled ones from `sla_tallies`; of those,
    the unanswered whose deadline is still ahead are counted live too (only recent ones),
    the rest of them are breached."""
    by_state = dict.fromkeys(SLA_STATES, 0)
    by_channel: dict[str, dict[str, int]] = {}

    def add(channel: str, state: str, count: int) -> None:
        if count and state in by_state:
            by_state[state] += count
            by_channel.setdefault(channel, dict.fromkeys(SLA_STATES, 0))[state] += count

    open_count = unassigned_count = 0
    for (channel, st), count in (await open_by_channel_state(session, now)).items():
        add(channel, st, count)
        if st == "unassigned":
            unassigned_count += count
        else:
            open_count += count
    unanswered: dict[str, int] = {}
    for tally in await session.scalars(select(SlaTally)):
        if tally.outcome == "unanswered":
            unanswered[tally.channel] = tally.count
        else:
            add(tally.channel, tally.outcome, tally.count)
    ahead = await states_by_channel(session, state_counts(now).where(
        Mention.status.in_(SETTLED_STATUSES), Mention.deadline_at > now,
        Mention.first_response_at.is_(None)))
    for (channel, st), count in ahead.items():
        if st in ("on_track", "at_risk"):
            add(channel, st, count)
            unanswered[channel] = unanswered.get(channel, 0) - count
    for channel, count in unanswered.items():
        add(channel, "breached", count)
    return {
        "states": by_state,
        "channels": by_channel,
        "unassigned": unassigned_count,
        "open": open_count,
    }


async def pending_alerts(session: AsyncSession) -> int:
    query = select(func.count()).select_from(OutboxAlert).where(
        OutboxAlert.sent_at.is_(None), OutboxAlert.state == "pending")  # unsent: an index range
    return await session.scalar(query) or 0


async def source_states(session: AsyncSession) -> list[SourceState]:
    return list(await session.scalars(select(SourceState).order_by(SourceState.id)))


async def events_for(session: AsyncSession, mention_id: int) -> list[MentionEvent]:
    return list(
        await session.scalars(
            select(MentionEvent)
            .where(MentionEvent.mention_id == mention_id)
            .order_by(MentionEvent.id)
        )
    )
