"""Reply templates admins edited: stored overrides of the tone template files."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import ToneTemplate

Key = tuple[str, str, str]  # (channel or tone group, intent, lang)


async def overrides_for(session: AsyncSession, folders: Iterable[str]) -> dict[Key, str]:
    """Every override at these levels (a channel, its source kind, its tone group)."""
    rows = await session.scalars(
        select(ToneTemplate).where(ToneTemplate.channel.in_(list(folders))))
    return {(row.channel, row.intent, row.lang): row.body for row in rows}


async def all_overrides(session: AsyncSession) -> dict[Key, ToneTemplate]:
    rows = await session.scalars(select(ToneTemplate))
    return {(row.channel, row.intent, row.lang): row for row in rows}


async def save_override(session: AsyncSession, key: Key, body: str, by: str,
                        now: datetime) -> ToneTemplate:
    channel, intent, lang = key
    row = await session.scalar(select(ToneTemplate).where(
        ToneTemplate.channel == channel, ToneTemplate.intent == intent,
        ToneTemplate.lang == lang))
    if row is None:
        row = ToneTemplate(channel=channel, intent=intent, lang=lang)
        session.add(row)
    row.body, row.updated_by, row.updated_at = body, by[:100], now
    await session.flush()
    return row


async def delete_override(session: AsyncSession, key: Key) -> bool:
    """Back to the file; False when there was no override."""
    channel, intent, lang = key
    result = await session.execute(delete(ToneTemplate).where(
        ToneTemplate.channel == channel, ToneTemplate.intent == intent,
        ToneTemplate.lang == lang))
    return bool(result.rowcount)
