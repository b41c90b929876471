"""The open queue as the dashboard pages through it: filters, one COUNT, one LIMITed page.

Ordered like the backlog drain (deadline, then priority, then id), so what an agent sees
first is what the router hands out first. Text search is case- and Turkish-insensitive
("IADE" and "iade" find "İade"; "sikayet" finds "şikayet") on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import OPEN_STATUSES, Agent, Author, Customer, Mention
from listener.store.queries import PRIORITY_RANK, sla_state_condition

QUEUE_STATES = ("on_track", "at_risk", "breached", "none")  # none: no deadline applies
# Letters a search treats as one: case, Turkish dotless/dotted i, and the cedilla/breve
# forms people drop when typing fast on an English keyboard.
LETTER_GROUPS = ("aAâÂ", "cCçÇ", "gGğĞ", "iIıİîÎ", "oOöÖ", "sSşŞ", "uUüÜûÛ")
GLOB_SPECIAL = "*?[]"


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


def letter_class(char: str) -> str:
    """Every spelling of one letter a search should accept, e.g. "iIıİîÎ" for "i"."""
    for group in LETTER_GROUPS:
        if char in group:
            return group
    variants = dict.fromkeys((char, char.lower(), char.upper()))
    return "".join(v for v in variants if len(v) == 1)


def glob_pattern(text: str) -> str:
    """SQLite GLOB (case-sensitive, so each letter becomes a class of its spellings)."""
    parts = []
    for char in text:
        spellings = letter_class(char)
        if len(spellings) > 1 or char in GLOB_SPECIAL:
            parts.append(f"[{spellings}]")
        else:
            parts.append(char)
    return "*" + "".join(parts) + "*"


def regex_pattern(text: str) -> str:
    """PostgreSQL `~`: the same classes; anything else literal (a backslash before a
    character that is not a letter or digit always means the character itself)."""
    parts = []
    for char in text:
        spellings = letter_class(char)
        if len(spellings) > 1:
            parts.append(f"[{spellings}]")
        else:
            parts.append(char if char.isalnum() else "\\" + char)
    return "".join(parts)


def text_matches(column: Any, text: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        return column.op("GLOB")(glob_pattern(text))
    return column.op("~")(regex_pattern(text))


def state_condition(state: str, now: Any) -> ColumnElement[bool]:
    if state == "none":
        return Mention.deadline_at.is_(None)
    return sla_state_condition(state, now)


def conditions(flt: QueueFilter, now: Any, dialect: str) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = [Mention.status.in_(OPEN_STATUSES)]
    equal = ((Mention.channel, flt.channel), (Mention.source, flt.source),
             (Mention.assignee, flt.assignee), (Mention.lang, flt.lang),
             (Customer.segment, flt.segment))
    found += [column == value for column, value in equal if value]
    if flt.unassigned:
        found.append(Mention.assignee.is_(None))
    if flt.sla_state:
        found.append(state_condition(flt.sla_state, now))
    if flt.text:
        found.append(or_(*(text_matches(column, flt.text, dialect)
                           for column in (Mention.text, Author.handle, Author.name))))
    return found


def _joined(query: Any) -> Any:
    return (query.select_from(Mention)
            .outerjoin(Author, Author.id == Mention.author_id)
            .outerjoin(Customer, Customer.id == Mention.customer_id))


async def open_queue(session: AsyncSession, flt: QueueFilter, now: Any, offset: int = 0,
                     limit: int = 50) -> QueuePage:
    """One page of open mentions, most urgent deadline first, and how many match in all."""
    where = and_(*conditions(flt, now, session.get_bind().dialect.name))
    total = await session.scalar(_joined(select(func.count())).where(where))
    query = (_joined(select(Mention, Author, Customer.segment)).where(where)
             .order_by(Mention.deadline_at.is_(None), Mention.deadline_at, PRIORITY_RANK,
                       Mention.id)
             .offset(offset).limit(limit))
    rows = [QueueRow(m, a, seg) for m, a, seg in (await session.execute(query)).all()]
    return QueuePage(rows, total or 0)


async def queue_choices(session: AsyncSession) -> dict[str, list[str]]:
    """What the filter form offers: values present among open mentions, every customer
    segment, and the active agents."""
    choices: dict[str, list[str]] = {}
    open_mentions = Mention.status.in_(OPEN_STATUSES)
    for name, column in (("channel", Mention.channel), ("source", Mention.source),
                         ("lang", Mention.lang)):
        values = await session.scalars(select(column).distinct().where(
            open_mentions, column.is_not(None)).order_by(column))
        choices[name] = list(values)
    choices["segment"] = list(await session.scalars(
        select(Customer.segment).distinct().where(Customer.segment.is_not(None))
        .order_by(Customer.segment)))
    choices["agent"] = list(await session.scalars(
        select(Agent.id).where(Agent.active).order_by(Agent.id)))
    return choices


async def agent_status(session: AsyncSession, agent_id: str) -> str | None:
    """"available" or "away"; None when no configured agent has this id."""
    return await session.scalar(select(Agent.status).where(Agent.id == agent_id))
