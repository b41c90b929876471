"""What an agent does to a mention. Each returns the updated row or raises a typed error
the web layer maps to an HTTP status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import SentReply
from listener.models import OPEN_STATUSES, Agent, Mention, MentionEvent


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


class Invalid(ValueError):
    pass


async def _mention(session: AsyncSession, mention_id: int) -> Mention:
    mention = await session.get(Mention, mention_id)
    if mention is None:
        raise NotFound(f"mention {mention_id} does not exist")
    return mention


async def assign(
    session: AsyncSession, mention_id: int, agent_id: str | None, actor: str, now: datetime
) -> Mention:
    mention = await _mention(session, mention_id)
    # A NUL is never in a configured id, and PostgreSQL refuses to even look one up.
    unknown = agent_id is not None and (
        "\x00" in agent_id or await session.get(Agent, agent_id) is None)
    if unknown:
        raise Invalid(f"agent {agent_id!r} is not configured; GET /api/v1/agents lists them")
    mention.assignee = agent_id
    if mention.status in ("new", "assigned"):
        mention.status = "assigned" if agent_id else "new"
    session.add(
        MentionEvent(
            mention_id=mention.id, kind="assigned", at=now, actor=actor, data={"agent": agent_id}
        )
    )
    return mention


async def mark_responded(
    session: AsyncSession,
    mention_id: int,
    actor: str,
    now: datetime,
    note: str | None = None,
    kind: str = "responded",
    data: dict[str, Any] | None = None,
    repeat_ok: bool = False,
    reply: SentReply | None = None,
) -> Mention:
    """The first response stops the clock; a second one never moves the stop time. Marking
    responded twice is a conflict; a further reply sent (`repeat_ok`) is only recorded."""
    mention = await _mention(session, mention_id)
    if mention.first_response_at is not None and repeat_ok:
        session.add(MentionEvent(mention_id=mention.id, kind=kind, at=now, actor=actor, data=data))
        return mention
    if mention.first_response_at is not None:
        raise Conflict(
            f"mention {mention_id} was already answered at {mention.first_response_at.isoformat()}"
        )
    mention.first_response_at = now
    mention.status = "responded"
    mention.next_alert_at = None
    if reply is not None:
        mention.response_external_id = reply.external_id
        mention.response_url = reply.url
    session.add(
        MentionEvent(
            mention_id=mention.id,
            kind=kind,
            at=now,
            actor=actor,
            data={"note": note, **(data or {})},
        )
    )
    return mention


async def ignore(
    session: AsyncSession, mention_id: int, reason: str, actor: str, now: datetime
) -> Mention:
    """Not worth an answer (spam, a bot, a duplicate): out of every queue and no deadline
    alerts, with the reason kept in the history. Only an open mention can be ignored."""
    if not reason.strip():
        raise Invalid("say why the mention is ignored (a reason is required)")
    mention = await _mention(session, mention_id)
    if mention.status not in OPEN_STATUSES:
        raise Conflict(f"mention {mention_id} is {mention.status}, not open; only open "
                       "mentions can be ignored")
    mention.status = "ignored"
    mention.next_alert_at = None
    session.add(MentionEvent(mention_id=mention.id, kind="ignored", at=now, actor=actor,
                             data={"reason": reason.strip()}))
    return mention


async def sync_agents(session: AsyncSession, agents: list[dict[str, Any]]) -> None:
    """Mirror the config's agents; ones removed from config stay for history, inactive."""
    configured = {a["id"] for a in agents}
    existing = {a.id: a for a in await session.scalars(select(Agent))}
    for values in agents:
        row = existing.get(values["id"])
        if row is None:
            session.add(Agent(**values, active=True))
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.active = True
    for agent_id, row in existing.items():
        if agent_id not in configured:
            row.active = False
