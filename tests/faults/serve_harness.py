"""What the fault tests run `listener serve` against: a feed that grows, an alert
receiver that remembers every dedupe key and which serve process sent it, and a webhook
sender that retries the way real senders do (on connection errors and 5xx)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from sqlalchemy import func, select

from connectors.webhook import sign
from listener.models import Mention, OutboxAlert
from listener.store import Store
from tests.test_serve import SECRET

ALERT_SECRET = "fault-alert-secret"
# Posted long ago: already breached when stored, so every pushed item is a due alert.
LONG_AGO = timedelta(days=10)


class GrowingFeed:
    """An RSS feed on 127.0.0.1; `add` publishes new items, `served` fires per full body."""

    def __init__(self) -> None:
        self.items: list[tuple[str, datetime]] = []
        self.served = asyncio.Event()
        self.requests = 0

    def add(self, count: int) -> None:
        now = datetime.now(UTC)
        start = len(self.items)
        self.items = [(f"feed-{start + n}", now) for n in range(count)] + self.items

    @property
    def guids(self) -> set[str]:
        return {guid for guid, _ in self.items}

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        entries = "".join(
            f"<item><guid>{guid}</guid><title>Kargo {guid} nerede?</title>"
            f"<link>https://news.example/{guid}</link><description>Gelmedi</description>"
            f"<pubDate>{format_datetime(when)}</pubDate></item>" for guid, when in self.items)
        body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Acme</title><link>https://news.example/</link>{entries}"
                f"</channel></rss>")
        self.served.set()
        return web.Response(text=body, content_type="application/rss+xml")


@dataclass
class AlertReceiver:
    """Takes the generic webhook sink's POSTs. `generation` is set by the test to the
    number of the serve process running, so a repeat can be traced to a kill."""

    generation: int = 0
    received: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        alerts = body["alerts"] if body.get("kind") == "group" else [body]
        for alert in alerts:
            self.received.append((alert["dedupe_key"], self.generation, alert))
        self.arrived.set()
        return web.Response(text="ok")

    def keys(self) -> set[str]:
        return {key for key, _, _ in self.received}

    def breached_mentions(self) -> set[int]:
        return {alert["mention"]["id"] for _, _, alert in self.received
                if alert["kind"] == "breached"}

    def repeats_within_one_process(self) -> list[str]:
        """Keys sent twice by the same serve process: the outbox promises none."""
        counts = Counter((key, generation) for key, generation, _ in self.received)
        return [key for (key, _), n in counts.items() if n > 1]

    def repeated(self) -> set[str]:
        counts = Counter(key for key, _, _ in self.received)
        return {key for key, n in counts.items() if n > 1}


@dataclass
class WebhookSender:
    """Pushes batches to `hook` until each is accepted (202), retrying as a real sender
    would; keeps every status it saw and the Retry-After of each 503."""

    base: str
    statuses: Counter[int] = field(default_factory=Counter)
    retry_after: list[str | None] = field(default_factory=list)
    errors_503: list[dict[str, Any]] = field(default_factory=list)
    connection_errors: int = 0
    sent: list[str] = field(default_factory=list)

    async def deliver(self, session: aiohttp.ClientSession, items: list[dict[str, Any]],
                      pause: float = 0.2) -> None:
        body = json.dumps(items).encode()
        headers = {"X-Listener-Signature": sign(SECRET, body)}
        while True:
            try:
                async with session.post(f"{self.base}/api/v1/webhooks/hook", data=body,
                                        headers=headers) as response:
                    self.statuses[response.status] += 1
                    answer = await response.read()
                    if response.status == 202:
                        self.sent += [item["id"] for item in items]
                        return
                    assert response.status == 503, (response.status, answer[:300])
                    self.retry_after.append(response.headers.get("Retry-After"))
                    self.errors_503.append(json.loads(answer))
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                self.connection_errors += 1
            await asyncio.sleep(pause)


def webhook_batch(prefix: str, size: int) -> list[dict[str, Any]]:
    posted = (datetime.now(UTC) - LONG_AGO).isoformat()
    return [{"id": f"{prefix}-{n}", "text": f"Order {prefix}/{n} never arrived, help",
             "created_at": posted, "channel": "web",
             "author": {"handle": f"{prefix}-{n}", "name": "Customer"}} for n in range(size)]


def write_config(tmp_path: Path, db_url: str, port: int, feed_url: str,
                 alerts_url: str) -> Path:
    config = {
        "timezone": "Europe/Istanbul",
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": ["t"]},
        "sources": [
            {"id": "hook", "kind": "webhook", "secret": "${HOOK_SECRET}"},
            {"id": "news", "kind": "rss", "url": feed_url, "interval": "1s",
             "backfill": "2d", "timeout": "5s"},
        ],
        "agents": [{"id": "ayse", "channels": ["web", "rss"], "max_open": 1000000}],
        "sla": {"policies": [{"name": "same-day", "first_response": "same_day"}]},
        "alerts": [{"kind": "webhook", "name": "receiver", "url": alerts_url,
                    "secret": ALERT_SECRET, "on": ["breached"], "group_window": "1s",
                    "timeout": "5s"}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@dataclass
class Stored:
    """What the database holds at the end of a fault test."""

    mentions: Counter[str]  # external id -> rows
    by_source: dict[str, set[int]]  # source -> mention ids
    outbox_keys: set[str]
    pending: int

    @classmethod
    async def read(cls, db_url: str) -> Stored:
        store = Store.open(db_url)
        try:
            async with store.read() as session:
                rows = (await session.execute(
                    select(Mention.id, Mention.source, Mention.external_id))).all()
                keys = set(await session.scalars(select(OutboxAlert.dedupe_key)))
                pending = await session.scalar(
                    select(func.count()).select_from(OutboxAlert)
                    .where(OutboxAlert.state == "pending")) or 0
        finally:
            await store.close()
        by_source: dict[str, set[int]] = {}
        for mention_id, source, _ in rows:
            by_source.setdefault(source, set()).add(mention_id)
        return cls(Counter(external for _, _, external in rows), by_source, keys, pending)

    def duplicates(self) -> list[str]:
        return [external for external, n in self.mentions.items() if n > 1]


async def serve_fakes(aiohttp_server: Any, feed: GrowingFeed, receiver: AlertReceiver
                      ) -> tuple[str, str]:
    """The feed and the alert receiver on 127.0.0.1; returns their URLs."""
    app = web.Application()
    app.router.add_get("/feed.xml", feed.handle)
    app.router.add_post("/alerts", receiver.handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/feed.xml")), str(server.make_url("/alerts"))


async def settle(db_url: str, check: Any, timeout: float = 60) -> Stored:
    """Re-reads the database until `check(stored)` holds; fails with the last state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stored = await Stored.read(db_url)
        if check(stored):
            return stored
        assert asyncio.get_running_loop().time() < deadline, (
            f"did not settle: {len(stored.mentions)} mentions, {stored.pending} pending alerts")
        await asyncio.sleep(0.5)
