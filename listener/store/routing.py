"""Reads and writes for routing outside ingest: the backlog drain, hand-offs, agent status.

Kept apart from `actions.assign` because these are the router's moves, recorded with the
router's reason, not an agent's manual assignment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import OPEN_STATUSES, Agent, Customer, Mention, MentionEvent
from listener.store.actions import NotFound
from listener.store.queries import PRIORITY_RANK
from listener.store.value_lists import one_of

AGENT_STATUSES = ("available", "away")


class ConversationOwner(NamedTuple):
    """Who had one of a customer's mentions: the input of routing affinity. A named
    tuple: a batch reads tens of thousands of them, and a frozen dataclass took four
    times as long to build."""

    customer_id: int | None
    source: str
    thread: str | None
    created_at: datetime
    assignee: str


async def lock_routing(session: AsyncSession) -> None:
    """Serialise routing across transactions: whoever reads the agents' loads and assigns
    holds every agent row until commit, so two writers can never both see room for the
    last slot under `max_open`. PostgreSQL only; SQLite has one writer already (and
    `Store.write` queues them in-process). Rows are taken in id order: no deadlocks."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(Agent.id).order_by(Agent.id).with_for_update())


async def away_agents(session: AsyncSession) -> set[str]:
    return set(await session.scalars(select(Agent.id).where(Agent.status == "away")))


# Each assignee that ever held a mention, found by skipping through ix_mentions_assignee_id
# (one seek per name, however many mentions each holds), then each one's newest mention
# (one more seek). Walking ids down to the newest assigned mention instead read every
# unassigned one stored since, which grows without bound once every agent is full. The
# names come from the mentions themselves, not from `agents`: rows written before an
# agent was synced, or by hand, still count.
LAST_ASSIGNED_SQL = text("""
WITH RECURSIVE assignees(name) AS (
  SELECT min(assignee) FROM mentions
  UNION ALL
  SELECT (SELECT min(assignee) FROM mentions WHERE assignee > name)
  FROM assignees WHERE name IS NOT NULL
)
SELECT name FROM assignees WHERE name IS NOT NULL
ORDER BY (SELECT max(id) FROM mentions WHERE assignee = name) DESC
LIMIT 1""")


async def last_assigned(session: AsyncSession) -> str | None:
    """Round robin resumes after whoever got the newest assigned mention."""
    return await session.scalar(LAST_ASSIGNED_SQL)


async def unassigned_open(
    session: AsyncSession, limit: int = 1000
) -> list[tuple[Mention, str | None]]:
    """Open unassigned mentions with their customer's segment, oldest deadline first, then
    priority: the order in which the backlog drain hands them out. Locked on PostgreSQL,
    so an answer committed meanwhile is seen (and the mention skipped), not overwritten."""
    query = (
        select(Mention, Customer.segment)
        .outerjoin(Customer, Customer.id == Mention.customer_id)
        .where(Mention.status.in_(OPEN_STATUSES), Mention.assignee.is_(None))
        .order_by(Mention.deadline_at.is_(None), Mention.deadline_at, PRIORITY_RANK, Mention.id)
        .limit(limit)
        .with_for_update(of=Mention)
    )
    return [(m, segment) for m, segment in (await session.execute(query)).all()]


async def held_by(session: AsyncSession, agent_id: str) -> list[tuple[Mention, str | None]]:
    """An agent's open mentions, in the drain's order, for a hand-off."""
    query = (
        select(Mention, Customer.segment)
        .outerjoin(Customer, Customer.id == Mention.customer_id)
        .where(Mention.status.in_(OPEN_STATUSES), Mention.assignee == agent_id)
        .order_by(Mention.deadline_at.is_(None), Mention.deadline_at, PRIORITY_RANK, Mention.id)
        .with_for_update(of=Mention)
    )
    return [(m, segment) for m, segment in (await session.execute(query)).all()]


def route_to(
    session: AsyncSession, mention: Mention, agent_id: str | None, reason: str, now: datetime,
    actor: str = "router",
) -> None:
    """Give `mention` to `agent_id` (None: back to the unassigned queue) with the reason."""
    mention.assignee = agent_id
    mention.status = "assigned" if agent_id else "new"
    session.add(MentionEvent(
        mention_id=mention.id, kind="assigned" if agent_id else "unassigned", at=now,
        actor=actor, data={"agent": agent_id, "reason": reason}))


async def set_agent_status(session: AsyncSession, agent_id: str, status: str) -> Agent:
    if status not in AGENT_STATUSES:
        raise ValueError(f"status must be one of {AGENT_STATUSES}")
    agent = await session.get(Agent, agent_id)
    if agent is None or not agent.active:
        raise NotFound(f"agent {agent_id!r} is not configured; GET /api/v1/agents lists them")
    agent.status = status
    return agent


async def conversation_owners(
    session: AsyncSession, customer_ids: set[int], source: str, threads: set[str],
    since: datetime,
) -> list[ConversationOwner]:
    """Assigned mentions of these customers since `since`, and of these threads of one
    source: one query for a whole ingest batch."""
    return await owners_of(session, customer_ids, {(source, t) for t in threads}, since)


async def owners_of(
    session: AsyncSession, customer_ids: set[int], threads: set[tuple[str, str]],
    since: datetime,
) -> list[ConversationOwner]:
    """Assigned mentions of these customers since `since`, and of these (source, thread)
    pairs at any time: one query for a batch spanning sources (the drain, a hand-off)."""
    conditions = []
    if customer_ids:
        conditions.append(mentions_of(session, Mention.customer_id, customer_ids,
                                      Mention.created_at >= since))
    by_source: dict[str, set[str]] = {}
    for source, thread in threads:
        by_source.setdefault(source, set()).add(thread)
    # `source = … AND thread IN (…)` per source, not `(source, thread) IN (…)`: SQLite
    # cannot use ix_mentions_source_thread for row values under OR and scanned the table.
    dialect = session.bind.dialect.name
    conditions.extend(and_(Mention.source == source,
                           one_of(Mention.thread, sorted(names), dialect))
                      for source, names in sorted(by_source.items()))
    if not conditions:
        return []
    rows = await session.execute(
        select(Mention.id, Mention.customer_id, Mention.source, Mention.thread,
               Mention.created_at, Mention.assignee)
        .where(Mention.assignee.is_not(None), or_(*conditions))
    )
    # Oldest first, whatever the plan: of two owners at the same moment the first stored
    # wins (`Conversations`), on both databases and at any batch size.
    return [ConversationOwner(*row[1:]) for row in sorted(rows, key=itemgetter(0))]


def mentions_of(session: AsyncSession, column: Any, values: Iterable[Any],
                *bounds: Any) -> Any:
    """`column IN (values) AND bounds` for an indexed column of mentions. On SQLite the
    matching ids come from the index alone and the rows are then read in id (table)
    order: read in index order they are scattered over the whole table, and those page
    reads were most of the cost of a batch's look-ups. PostgreSQL's bitmap scan reads in
    table order already. `bounds` (a time range) go in the same WHERE as `column`, so an
    index on (column, time) reads only that range, not the column's whole history."""
    if session.bind.dialect.name == "sqlite":
        return Mention.id.in_(select(Mention.id).where(
            one_of(column, sorted(values), "sqlite"), *bounds))
    return and_(column.in_(values), *bounds)
