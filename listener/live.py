"""In-process news for open pages: "these mentions changed", never what they say.

Whoever changes the queue (ingest, an agent's action, the backlog router) publishes a
small event after its commit; every open queue page has a subscription and re-reads the
rows it shows. Publishing never waits: each subscriber has a bounded queue, and one that
falls behind is dropped (its page reconnects and re-reads) rather than slowing the
publisher, which is usually in the middle of ingest or an agent's request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiohttp import web
from sqlalchemy import event

from listener.models import MentionEvent

log = logging.getLogger("listener.live")
QUEUE_SIZE = 100  # events one subscriber may have unread before it is dropped
_END = object()  # tells a subscription the feed is done with it
# An agent action (a function of listener.store.actions) as the `what` of its event.
ACTION_WHAT = {"assign": "assigned", "mark_responded": "answered", "ignore": "ignored"}


class Subscription:
    """Events for one listener, in order; iteration ends when the feed closes or drops it."""

    def __init__(self, size: int):
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=size)
        self.dropped = False
        self.ended = False

    def offer(self, event: dict[str, Any]) -> bool:
        """False when full: the caller drops this subscriber."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def end(self) -> None:
        """Make room for the end marker even when full: what is unread no longer matters."""
        self.ended = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_END)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self._queue.get()
        if event is _END:
            self._queue.put_nowait(_END)  # later reads end too
            raise StopAsyncIteration
        return event


class LiveFeed:
    def __init__(self, queue_size: int = QUEUE_SIZE):
        self.queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: dict[str, Any]) -> None:
        """Hand `event` to every subscriber without waiting for any of them."""
        for subscription in list(self._subscribers):
            if not subscription.offer(event):
                log.info("live: dropping a subscriber %d events behind", self.queue_size)
                subscription.dropped = True
                self._discard(subscription)

    def mentions_changed(self, ids: Iterable[int], what: str) -> None:
        """The one event shape pages receive: which mentions, and what happened to them."""
        self.publish({"kind": "mention", "ids": sorted(set(ids)), "what": what})

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        subscription = Subscription(self.queue_size)
        if self.closed:
            subscription.end()
        else:
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def close(self) -> None:
        """Shutting down: every subscription ends, so open streams finish cleanly."""
        self.closed = True
        for subscription in list(self._subscribers):
            self._discard(subscription)

    def _discard(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        subscription.end()


def what_happened(action: Any) -> str:
    return ACTION_WHAT.get(getattr(action, "__name__", ""), "changed")


@contextmanager
def mentions_touched(session: Any) -> Iterator[set[int]]:
    """The mentions a transaction writes history for (every assignment, answer and
    hand-off adds a MentionEvent), collected across flushes: filled when the block ends,
    before the commit, so the caller announces them after it."""
    touched: set[int] = set()

    def collect(flushing: Any, *_: Any) -> None:
        touched.update(e.mention_id for e in flushing.new if isinstance(e, MentionEvent))

    sync_session = session.sync_session
    event.listen(sync_session, "before_flush", collect)
    try:
        yield touched
        collect(sync_session)
    finally:
        event.remove(sync_session, "before_flush", collect)


LIVE = web.AppKey("live", LiveFeed)


async def end_live_streams(app: web.Application) -> None:
    """on_shutdown: end the event streams before aiohttp waits for open requests."""
    app[LIVE].close()
