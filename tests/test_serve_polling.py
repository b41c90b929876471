"""`listener serve` killed while it polls a real feed: a restart stores every item once."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from sqlalchemy import func, select

from listener.models import Mention
from listener.store import Store
from tests.test_serve import free_port, start, wait_ready

pytestmark = pytest.mark.slow


class Feed:
    """A feed server that can stall mid-body or report when a full body went out."""

    def __init__(self, size: int):
        now = datetime.now(UTC)
        self.items = [(f"guid-{n}", now - timedelta(minutes=n)) for n in range(size)]
        self.stall = False
        self.requests = 0
        self.stalled = asyncio.Event()
        self.served = asyncio.Event()

    def add(self, count: int) -> None:
        now = datetime.now(UTC)
        start = len(self.items)
        self.items = [(f"guid-{start + n}", now) for n in range(count)] + self.items

    def body(self) -> bytes:
        entries = "".join(
            f"<item><guid>{guid}</guid><title>Kargo {guid} nerede?</title>"
            f"<link>https://news.example/{guid}</link><description>Hâlâ gelmedi</description>"
            f"<pubDate>{format_datetime(when)}</pubDate></item>"
            for guid, when in self.items)
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Acme news</title><link>https://news.example/</link>{entries}"
                f"</channel></rss>").encode()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = self.body()
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.content_length = len(body)
        await response.prepare(request)
        if self.stall:
            await response.write(body[: len(body) // 2])
            self.stalled.set()
            await asyncio.sleep(3600)
        await response.write(body)
        await response.write_eof()
        self.served.set()
        return response


def write_config(tmp_path: Path, db_url: str, port: int, feed_url: str) -> Path:
    config = {
        "timezone": "Europe/Istanbul",
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": ["t"]},
        "sources": [{"id": "news", "kind": "rss", "url": feed_url, "interval": "1s",
                     "backfill": "2d"}],
        "agents": [{"id": "ayse", "channels": ["rss"], "max_open": 100000}],
        "sla": {"policies": [{"name": "same-day", "first_response": "same_day"}]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


async def counts(db_url: str) -> tuple[int, int]:
    """(rows, distinct external ids)."""
    store = Store.open(db_url)
    try:
        async with store.read() as session:
            rows = await session.scalar(select(func.count()).select_from(Mention))
            distinct = await session.scalar(select(func.count(Mention.external_id.distinct())))
            return rows or 0, distinct or 0
    finally:
        await store.close()


async def until(check: Any, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_sigkill_mid_poll_then_restart_stores_every_item_once(
        aiohttp_server: Any, db_url: str, tmp_path: Path) -> None:
    feed = Feed(40)
    app = web.Application()
    app.router.add_get("/feed.xml", feed.handle)
    server = await aiohttp_server(app)
    port = free_port()
    config = write_config(tmp_path, db_url, port, str(server.make_url("/feed.xml")))
    base = f"http://127.0.0.1:{port}"

    async def run_until(event: asyncio.Event) -> None:
        """Start serve, SIGKILL it the moment `event` fires (mid-body or body sent)."""
        event.clear()
        process = start(config, tmp_path)
        try:
            await wait_ready(base, process, tmp_path)
            await asyncio.wait_for(event.wait(), 60)
        finally:
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait, 30)

    feed.stall = True
    await run_until(feed.stalled)  # killed while the body was half read
    assert await counts(db_url) == (0, 0)
    feed.stall = False
    await run_until(feed.served)  # killed as the fetch completed: before or after commit
    rows, distinct = await counts(db_url)
    assert rows == distinct and rows in (0, 40)

    process = start(config, tmp_path)
    try:
        await wait_ready(base, process, tmp_path)
        await until(lambda: _has(db_url, 40))
        polls = feed.requests
        await until(lambda: _true(feed.requests >= polls + 2))  # re-polls change nothing
        assert await counts(db_url) == (40, 40)
        feed.add(5)
        await until(lambda: _has(db_url, 45))
        assert await counts(db_url) == (45, 45)
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 60)
    assert code == 0, (tmp_path / "serve.log").read_text()


async def _has(db_url: str, wanted: int) -> bool:
    return (await counts(db_url))[0] >= wanted


async def _true(value: bool) -> bool:
    return value


async def test_a_stop_does_not_wait_for_an_upstream_that_hangs(
        aiohttp_server: Any, db_url: str, tmp_path: Path) -> None:
    """SIGTERM while a poll waits on a feed that stopped sending mid-body: the service
    stops at once and cleanly (it used to wait out the source's 30 s timeout), and the
    next start fetches the feed again and stores it once."""
    feed = Feed(5)
    feed.stall = True
    app = web.Application()
    app.router.add_get("/feed.xml", feed.handle)
    server = await aiohttp_server(app)
    port = free_port()
    config = write_config(tmp_path, db_url, port, str(server.make_url("/feed.xml")))
    process = start(config, tmp_path)
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process, tmp_path)
        await asyncio.wait_for(feed.stalled.wait(), 60)
    finally:
        process.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        code = await asyncio.to_thread(process.wait, 60)
    took = time.monotonic() - asked
    log = (tmp_path / "serve.log").read_text()
    assert code == 0, log
    assert took < 20, f"stopping took {took:.0f}s: it waited for the hung request\n{log}"
    assert "Traceback" not in log
    stopping = [line for line in log.splitlines() if "stopped cleanly" in line]
    assert stopping, log
    assert await counts(db_url) == (0, 0)
    feed.stall = False
    process = start(config, tmp_path)
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process, tmp_path)
        await until(lambda: _has(db_url, 5))
        assert await counts(db_url) == (5, 5)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 60) == 0
