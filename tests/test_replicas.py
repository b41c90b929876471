"""Three `listener serve` replicas on one PostgreSQL database, one SIGKILLed mid-way:
every mention stored once, every alert sent once, no agent over `max_open`, and the
polled feed taken over by a survivor within two poll intervals.

PostgreSQL only, by design: SQLite is one process per file (tests/test_sqlite_single.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from sqlalchemy import func, select

from connectors.webhook import sign
from listener import db
from listener.leases import claim, holders
from listener.models import Mention, SourceLease
from listener.store import Store
from tests.test_serve import free_port, start, wait_ready
from tests.test_serve_polling import Feed

pytestmark = pytest.mark.slow
SECRET = "replica-hook-secret"
POLL_SECONDS = 4
BREACH_SECONDS = 6  # every webhook mention breaches after the kill: survivors alert
EVERY_DAY = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def pg_url(db_url: str) -> str:
    if db_url.startswith("sqlite"):
        pytest.skip("replicas share PostgreSQL; SQLite is one process by design")
    return db_url


class TimedFeed(Feed):
    """The RSS fake, remembering when each poll came."""

    def __init__(self, size: int):
        super().__init__(size)
        self.polled_at: list[float] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.polled_at.append(time.monotonic())
        return await super().handle(request)


class AlertReceiver:
    """The alert webhook: counts each dedupe key it is handed."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        for alert in body["alerts"] if body.get("kind") == "group" else [body]:
            self.keys[alert["dedupe_key"]] += 1
        return web.Response(text="ok")


def replica_config(directory: Path, db_url: str, port: int, feed_url: str,
                   hook_url: str) -> Path:
    config = {
        "timezone": "UTC",
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": ["t"]},
        "calendar": {"hours": EVERY_DAY},
        "sources": [{"id": "hook", "kind": "webhook", "secret": SECRET},
                    {"id": "news", "kind": "rss", "url": feed_url,
                     "interval": f"{POLL_SECONDS}s", "backfill": "2d"}],
        "agents": [{"id": "ayse", "channels": ["web"], "max_open": 4},
                   {"id": "john", "channels": ["web"], "max_open": 4}],
        "sla": {"policies": [{"name": "web-fast", "match": {"channels": ["web"]},
                              "first_response": f"{BREACH_SECONDS}s"}]},
        "alerts": [{"kind": "webhook", "name": "ops", "url": hook_url, "secret": SECRET,
                    "on": ["breached"],
                    "group_window": "0s"}],
    }
    directory.mkdir(exist_ok=True)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


async def push(session: aiohttp.ClientSession, base: str, prefix: str) -> bool:
    """One batch of 5 mentions posted now; True when the replica accepted it."""
    now = datetime.now(UTC).isoformat()
    items = [{"id": f"{prefix}-{i}", "text": f"Order {prefix}/{i} never came", "channel": "web",
              "created_at": now, "author": {"handle": f"{prefix}-{i}", "name": "C"}}
             for i in range(5)]
    body = json.dumps(items).encode()
    try:
        async with session.post(f"{base}/api/v1/webhooks/hook", data=body,
                                headers={"X-Listener-Signature": sign(SECRET, body)}) as reply:
            return reply.status == 202
    except aiohttp.ClientError:
        return False


async def query(db_url: str, statement: Any) -> list[Any]:
    store = Store.open(db_url)
    try:
        async with store.read() as session:
            return list((await session.execute(statement)).all())
    finally:
        await store.close()


async def until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_three_replicas_one_killed_store_alert_and_poll_once(
        aiohttp_server: Any, pg_url: str, tmp_path: Path) -> None:
    feed, receiver = TimedFeed(3), AlertReceiver()
    app = web.Application()
    app.router.add_get("/feed.xml", feed.handle)
    app.router.add_post("/alerts", receiver.handle)
    server = await aiohttp_server(app)
    ports = [free_port() for _ in range(3)]
    configs = [replica_config(tmp_path / f"r{n}", pg_url, port,
                              str(server.make_url("/feed.xml")), str(server.make_url("/alerts")))
               for n, port in enumerate(ports)]
    migrated = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "listener", "migrate", "--config",
                         str(configs[0])], capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    # Migrated once up front; the replicas then find the schema current.
    replicas = [start(config, config.parent) for config in configs]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        await asyncio.gather(*(wait_ready(base, process, config.parent)
                               for base, process, config in zip(bases, replicas, configs,
                                                                 strict=True)))
        await until(lambda: _true(len(feed.polled_at) >= 1), 30)
        (holder,) = (await query(pg_url, select(SourceLease.holder))) or [("",)]
        victim = next(n for n, p in enumerate(replicas) if f":{p.pid}:" in holder[0])

        accepted: list[str] = []
        async with aiohttp.ClientSession() as session:
            for round_ in range(12):
                alive = [n for n in range(3) if replicas[n].poll() is None]
                prefix = f"b{round_}"
                # The same batch to two replicas at once: concurrent ingest of one mention.
                targets = [bases[alive[round_ % len(alive)]],
                           bases[alive[(round_ + 1) % len(alive)]]]
                if any(await asyncio.gather(*(push(session, b, prefix) for b in targets))):
                    accepted.append(prefix)
                if round_ == 5:
                    replicas[victim].send_signal(signal.SIGKILL)
                    await asyncio.to_thread(replicas[victim].wait, 30)
                    killed_at = time.monotonic()
                    feed.add(2)  # only a survivor can store these
                await asyncio.sleep(0.2)

        await until(lambda: _true(any(t > killed_at for t in feed.polled_at)), 30)
        takeover = min(t for t in feed.polled_at if t > killed_at) - killed_at
        assert takeover <= 2 * POLL_SECONDS, f"feed polled again after {takeover:.1f}s"
        survivors = [p.pid for n, p in enumerate(replicas) if n != victim]
        (new_holder,) = await query(pg_url, select(SourceLease.holder))
        assert any(f":{pid}:" in new_holder[0] for pid in survivors)

        async def feed_stored() -> bool:  # 3 items before the kill, 2 only a survivor saw
            news = select(func.count()).where(Mention.source == "news")
            return (await query(pg_url, news))[0][0] == 5

        await until(feed_stored, 2 * POLL_SECONDS)
        rows = await query(pg_url, select(Mention.external_id, Mention.source))
        web_ids = Counter(external for external, source in rows if source == "hook")
        assert all(count == 1 for count in web_ids.values())
        assert {f"{prefix}-{i}" for prefix in accepted for i in range(5)} <= set(web_ids)

        mentions = await query(pg_url, select(Mention.id).where(Mention.source == "hook"))
        expected = {mention_id for (mention_id,) in mentions}

        async def all_alerted() -> bool:
            return {int(key.split(":")[0]) for key in receiver.keys} >= expected

        await until(all_alerted, BREACH_SECONDS + 30)
        await asyncio.sleep(1.0)  # a second copy would come right after the first
        assert all(count == 1 for count in receiver.keys.values()), receiver.keys
        assert len(receiver.keys) == len(expected)

        loads = await query(pg_url, select(Mention.assignee, func.count())
                            .where(Mention.assignee.is_not(None),
                                   Mention.status.in_(["new", "assigned"]))
                            .group_by(Mention.assignee))
        assert loads and all(count <= 4 for _, count in loads)
    finally:
        for process in replicas:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in replicas:
            await asyncio.to_thread(process.wait, 60)


async def _true(value: bool) -> bool:
    return value


async def test_a_lease_is_held_by_one_replica_until_it_expires(pg_url: str) -> None:
    store = Store.open(pg_url)
    await db.migrate(store.engine)
    now, ttl = datetime.now(UTC), timedelta(seconds=5)
    try:
        async with store.write() as session:
            assert await claim(session, "news", "a", now, ttl)
        async with store.write() as session:
            assert not await claim(session, "news", "b", now + timedelta(seconds=4), ttl)
            assert await claim(session, "news", "a", now + timedelta(seconds=4), ttl)  # renew
        async with store.write() as session:
            assert not await claim(session, "news", "b", now + timedelta(seconds=8), ttl)
            assert await claim(session, "news", "b", now + timedelta(seconds=10), ttl)
            assert await holders(session) == {"news": "b"}
    finally:
        await store.close()
