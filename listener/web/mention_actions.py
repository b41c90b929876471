"""What an agent does to one mention, done the same way whether the REST API or the
mention page asked: one transaction, the backlog woken, open queue pages told, the
first-response metric, and replies posted through the source before anything is
recorded as sent.

Store errors (NotFound, Invalid, Conflict) and reply errors (CannotSend, ReplyRefused)
pass through; each caller turns them into its own answer (JSON error or page notice).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.base import ReplyTarget, SentReply
from listener.backlog import BACKLOG
from listener.live import LIVE, what_happened
from listener.models import Author, Mention
from listener.services import SERVICES
from listener.store import queries as q
from listener.store.actions import NotFound, mark_responded
from responders.platform import reply_blocker, send_reply

Row = tuple[Mention, Author | None]


async def act(request: web.Request, mention_id: int, action: Any, **kwargs: Any) -> Row:
    """Run one store action in a transaction; returns the mention as it is afterwards."""
    svc = request.app[SERVICES]
    now = svc.clock.now()
    async with svc.store.write() as session:
        await action(session, mention_id, now=now, **kwargs)
    request.app[BACKLOG].wake()  # an answer or a move may have freed someone's capacity
    request.app[LIVE].mentions_changed([mention_id], what_happened(action))  # open pages
    async with svc.store.read() as session:
        row = await q.get_mention(session, mention_id)
    if row is None:  # deleted in between: as if it never existed
        raise NotFound(f"mention {mention_id} does not exist")
    mention = row[0]
    if mention.first_response_at == now and action is mark_responded:
        svc.metrics.observe_first_response(mention.channel, mention.sla_policy,
                                           mention.created_at, now, mention.deadline_at)
    return row


def why_no_sending(request: web.Request, mention: Mention) -> str | None:
    """Why replies to this mention cannot be posted from Listener, or None if they can."""
    svc = request.app[SERVICES]
    return reply_blocker(mention.source, svc.config.source(mention.source),
                         svc.connector_for(mention.source))


class TooLong(ValueError):
    """The reply is longer than the channel takes; nothing was sent."""

    def __init__(self, length: int, limit: int, channel: str):
        super().__init__(f"the reply is {length} characters long and {channel} allows {limit}")
        self.length, self.limit, self.channel = length, limit, channel


async def send_and_record(request: web.Request, row: Row, text: str,
                          actor: str) -> tuple[SentReply, Row]:
    """Post the reply on the platform; only a reply it took is recorded (and stops the
    clock when it is the first response). Raises TooLong, CannotSend or ReplyRefused."""
    svc = request.app[SERVICES]
    mention, author = row
    counted = svc.composer.measure(mention.channel, text, mention.source)
    if counted.over and counted.limit is not None:
        source = svc.config.source(mention.source)
        where = mention.channel if source is None or source.kind == mention.channel else \
            f"{mention.channel} ({source.kind})"
        raise TooLong(counted.length, counted.limit, where)
    target = ReplyTarget(mention.external_id, author.handle if author else "", mention.url,
                         mention.thread)
    sent = await send_reply(mention.source, svc.config.source(mention.source),
                            svc.connector_for(mention.source), target, text)
    updated = await act(request, mention.id, mark_responded, actor=actor, note=None,
                        kind="replied", repeat_ok=True, reply=sent,
                        data={"text": text, "reply_id": sent.external_id, "url": sent.url})
    return sent, updated
