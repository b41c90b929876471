"""`GET /events`: the live feed as server-sent events, for signed-in pages only.

Each event is `{"kind": "mention", "ids": [...], "what": "new|assigned|answered|..."}`;
no mention text ever travels here, the page re-reads its rows through the normal,
escaped HTML. A comment line goes out every HEARTBEAT seconds so proxies keep the
connection open and a vanished browser is noticed. The stream ends when the client
leaves, when it falls too far behind (the browser reconnects after RETRY_MS and re-reads),
and on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from listener.live import LIVE, Subscription
from listener.web.access import current_user

HEARTBEAT = 15.0
RETRY_MS = 2000


async def events_stream(request: web.Request) -> web.StreamResponse:
    current_user(request)  # anonymous visitors were sent to /login by the middleware
    async with request.app[LIVE].subscribe() as events, sse_response(
            request, ping_interval=HEARTBEAT) as stream:
        await stream.send("{}", event="ready", retry=RETRY_MS)
        await forward(events, stream)
    return stream


async def forward(events: Subscription, stream: EventSourceResponse) -> None:
    """Send events until the feed ends this subscription or the client goes away (the
    heartbeat task ends when a write fails)."""
    gone = asyncio.ensure_future(stream.wait())
    try:
        while True:
            upcoming = asyncio.ensure_future(anext(events))
            await asyncio.wait({upcoming, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not upcoming.done():
                upcoming.cancel()
                return
            try:
                event = upcoming.result()
            except StopAsyncIteration:
                return
            try:
                await stream.send(json.dumps(event))
            except ConnectionResetError:
                return
    finally:
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
