"""Stand-ins for the services alerts go to: real aiohttp servers on 127.0.0.1 that record
what they received and answer as a test scripts them. Also payloads in the shape the SLA
engine writes (see `sla/engine.py`), and outbox rows written the way the engine writes
them."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from listener.config import parse_config
from listener.store import Store
from listener.store.sla import add_outbox_rows
from tests.conftest import MONDAY_10

T0 = MONDAY_10
HANG = "hang"
DASHBOARD = "https://listener.example.com/mentions/{id}"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)


class FakeHook:
    """Answers each POST with the next scripted (status, headers, body), `HANG` to keep
    the caller waiting until the test ends, and 200 "ok" once the script runs out."""

    def __init__(self, *answers: Any):
        self.answers = list(answers)
        self.received: list[Received] = []
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path_qs, dict(request.headers),
                                      await request.read()))
        self.arrived.set()
        answer = self.answers.pop(0) if self.answers else (200, {}, "ok")
        if answer == HANG:
            await self.release.wait()
            answer = (200, {}, "ok")
        status, headers, body = answer
        return web.Response(status=status, headers=headers, text=body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app


def mention(id: int = 1, text: str = "My parcel never arrived, third week now",
            deadline_at: datetime | None = T0 + timedelta(hours=2, minutes=10),
            **overrides: Any) -> dict[str, Any]:
    body = {
        "id": id, "channel": "twitter", "source": "x-brand",
        "url": f"https://twitter.com/jane/status/{id}",
        "dashboard_url": DASHBOARD.format(id=id),
        "author": {"handle": "jane", "name": "Jane Doe"},
        "text": text, "assignee": "ayse", "assignee_slack": "U024BE7LH",
        "policy": "social-same-day",
        "deadline_at": deadline_at.isoformat() if deadline_at else None,
    }
    return {**body, **overrides}


def payload(kind: str = "breached", moment_at: datetime = T0, **mention_keys: Any
            ) -> dict[str, Any]:
    return {"kind": kind, "moment_at": moment_at.isoformat(), "mention": mention(**mention_keys)}


def sink_config(entry: dict[str, Any]) -> Any:
    """One `alerts[]` entry, validated by the real config."""
    [config] = parse_config({"alerts": [entry]}).alerts
    return config


async def write_alerts(store: Store, sink: str, payloads: list[dict[str, Any]],
                       created_at: list[datetime] | datetime = T0) -> None:
    """Outbox rows as the engine writes them: due at once, nothing tried yet."""
    times = created_at if isinstance(created_at, list) else [created_at] * len(payloads)
    rows = []
    for index, (body, at) in enumerate(zip(payloads, times, strict=True)):
        mention_id = body.get("mention", {}).get("id", index)
        rows.append({"dedupe_key": f"{mention_id}:{body['kind']}:{index}:{sink}",
                     "mention_id": None, "sink": sink, "kind": body["kind"], "payload": body,
                     "created_at": at, "next_attempt_at": at, "attempts": 0,
                     "state": "pending"})
    async with store.write() as session:
        assert await add_outbox_rows(session, rows) == len(rows)
