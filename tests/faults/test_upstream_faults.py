"""A polled upstream misbehaving the ways real ones do: 5xx, 429, a body cut off, a login
page instead of the feed, a 50 MB page, an answer trickling in. Each poll fails with a
reason the source's health shows, the next poll backs off, nothing half-read is stored,
and once the upstream is well again the next poll stores everything once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from listener.app import build_services, init_app
from listener.models import Mention
from tests.conftest import MONDAY_10, make_config

FEED_ITEMS = 12
DESCRIPTION = "Kargom hâlâ gelmedi, sipariş numaram 42. " * 500  # ~20 kB an item


def feed_body() -> bytes:
    """~250 kB: more than one network read, so a reader that stops at the first chunk
    would store a cut feed."""
    when = format_datetime(MONDAY_10 - timedelta(minutes=5))
    entries = "".join(
        f"<item><guid>guid-{n}</guid><title>Acme kargo {n}</title>"
        f"<description>{DESCRIPTION}</description><pubDate>{when}</pubDate></item>"
        for n in range(FEED_ITEMS))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Acme</title>{entries}</channel></rss>").encode()


class Upstream:
    """The feed server; `fault` picks how it misbehaves (None: a good feed)."""

    def __init__(self) -> None:
        self.fault: str | None = None
        self.bytes_sent = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.fault is None:
            return web.Response(body=feed_body(), content_type="application/rss+xml")
        return await FAULTS[self.fault][0](self, request)

    async def stream(self, request: web.Request, chunks: int, chunk: bytes,
                     pause: float = 0.0, length: int | None = None) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        self.bytes_sent = 0
        if length is not None:
            response.content_length = length
        await response.prepare(request)
        try:
            for _ in range(chunks):
                await response.write(chunk)
                self.bytes_sent += len(chunk)
                if pause:
                    await asyncio.sleep(pause)
        except (ConnectionError, RuntimeError):
            return response  # the client gave up: what we want it to do
        if length is None:
            await response.write_eof()
        return response


async def server_error(up: Upstream, request: web.Request) -> web.StreamResponse:
    return web.Response(status=503, text="<html>Service Unavailable</html>",
                        content_type="text/html")


async def rate_limited(up: Upstream, request: web.Request) -> web.StreamResponse:
    return web.Response(status=429, headers={"Retry-After": "120"}, text="slow down")


async def truncated(up: Upstream, request: web.Request) -> web.StreamResponse:
    body = feed_body()
    response = await up.stream(request, 1, body[: len(body) // 2], length=len(body))
    assert request.transport is not None
    request.transport.close()
    return response


async def login_page(up: Upstream, request: web.Request) -> web.StreamResponse:
    return web.Response(text="<html><body><form>Please log in</form></body></html>",
                        content_type="text/html")


async def huge_page(up: Upstream, request: web.Request) -> web.StreamResponse:
    """50 MB, chunked: no Content-Length to refuse it by, so the reader must stop."""
    return await up.stream(request, 50 * 16, b"x" * 65536)


async def huge_declared(up: Upstream, request: web.Request) -> web.StreamResponse:
    return await up.stream(request, 50 * 16, b"x" * 65536, length=50 * 2**20)


async def trickle(up: Upstream, request: web.Request) -> web.StreamResponse:
    return await up.stream(request, 10_000, b"<", pause=0.1)


Fault = Callable[[Upstream, web.Request], Awaitable[web.StreamResponse]]
# fault -> (handler, outcome, words in the source's last_error)
FAULTS: dict[str, tuple[Fault, str, str]] = {
    "5xx": (server_error, "error", "HTTP 503"),
    "429": (rate_limited, "rate_limited", "429"),
    "truncated": (truncated, "error", "cut off"),
    "wrong content type": (login_page, "error", "did not return an RSS or Atom feed"),
    "50 MB page": (huge_page, "error", "max_body of 10,485,760 bytes"),
    "50 MB declared": (huge_declared, "error", "52,428,800 bytes announced"),
    "slow trickle": (trickle, "error", "timeout"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_faulty_upstream_fails_the_poll_visibly_backs_off_then_recovers(
        fault: str, db_url: str, clock: Any, enricher: Any, aiohttp_server: Any,
        aiohttp_client: Any) -> None:
    upstream = Upstream()
    services, client = await start_source(upstream, db_url, clock, enricher, aiohttp_server,
                                          aiohttp_client, interval="60s", timeout="1s")
    coordinator = services.coordinator
    _, outcome, words = FAULTS[fault]

    upstream.fault = fault
    waits = []
    for attempt in (1, 2):
        assert await coordinator.poll("news") == outcome
        health = await source_health(client)
        assert health["consecutive_failures"] == attempt
        assert words in health["last_error"]
        waits.append(coordinator.sources["news"].next_poll_at - clock.now())
        assert await coordinator.poll("news") == "skipped"  # not before the back-off
        clock.advance(waits[-1])
    if outcome == "rate_limited":
        assert waits == [timedelta(seconds=120)] * 2  # Retry-After, not the interval
    else:
        assert timedelta(seconds=60) <= waits[0] < waits[1]  # exponential back-off
    assert upstream.bytes_sent < 25 * 2**20  # a huge page is not read to its end
    assert await stored(services) == 0  # nothing half-read was stored

    upstream.fault = None
    assert await coordinator.poll("news") == "ok"
    assert await stored(services) == FEED_ITEMS
    assert (await source_health(client))["consecutive_failures"] == 0
    clock.advance(timedelta(minutes=5))
    assert await coordinator.poll("news") == "ok"
    assert await stored(services) == FEED_ITEMS  # each item once


async def test_max_body_is_set_per_source(db_url: str, clock: Any, enricher: Any,
                                          aiohttp_server: Any, aiohttp_client: Any) -> None:
    services, client = await start_source(Upstream(), db_url, clock, enricher,
                                          aiohttp_server, aiohttp_client, max_body="64KiB")
    assert await services.coordinator.poll("news") == "error"
    assert "max_body of 65,536 bytes" in (
        await source_health(client))["last_error"]
    assert await stored(services) == 0


async def start_source(upstream: Upstream, db_url: str, clock: Any, enricher: Any,
                       aiohttp_server: Any, aiohttp_client: Any, **keys: str
                       ) -> tuple[Any, Any]:
    """The upstream on 127.0.0.1, an rss source `news` polling it, and an API client."""
    app = web.Application()
    app.router.add_get("/feed.xml", upstream.handle)
    server = await aiohttp_server(app)
    config = make_config(db_url, sources=[
        {"id": "news", "kind": "rss", "url": str(server.make_url("/feed.xml")),
         "backfill": "2d", **keys}])
    services = build_services(config, clock=clock, enricher=enricher)
    return services, await aiohttp_client(init_app(services, background=False))


async def source_health(client: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/sources",
                                headers={"Authorization": "Bearer test-token"})
    assert response.status == 200
    return next(s for s in (await response.json())["items"] if s["id"] == "news")


async def stored(services: Any) -> int:
    async with services.store.read() as session:
        return await session.scalar(select(func.count()).select_from(Mention)) or 0
