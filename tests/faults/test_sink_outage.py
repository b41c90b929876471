"""Slack failing for minutes — 500s, then answers slower than the sink's `timeout`, then
a storm of 429s — while alerts keep coming, then recovering: every alert reaches Slack
exactly once, none is dropped, Retry-After is honoured and the worker never gives up.
Time is a FixedClock moved in 5 s steps; only the timeouts take real time."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from listener.clock import FixedClock
from listener.metrics import Metrics
from listener.models import OutboxAlert
from listener.store import Store
from responders.alerts.base import Throttle
from responders.alerts.outbox import AlertOutbox
from responders.alerts.slack import SlackSink
from tests.responders.hooks import T0, payload, sink_config, write_alerts

RETRY_AFTER = 20
STEP = timedelta(seconds=5)
ALERT_EVERY = timedelta(seconds=15)
ALERTS_UNTIL = timedelta(minutes=8)
RECOVERS_AT = timedelta(minutes=7)
LINK = re.compile(r"/mentions/(\d+)")


def slack_answer(elapsed: timedelta) -> str:
    """What Slack does `elapsed` into the test: 2 min of 500s, 2 min of hangs, 3 min of
    429s, then well."""
    if elapsed < timedelta(minutes=2):
        return "500"
    if elapsed < timedelta(minutes=4):
        return "hang"
    if elapsed < RECOVERS_AT:
        return "429"
    return "200"


class FakeSlack:
    """An incoming webhook that fails as `slack_answer` says. `now` is the test's clock;
    a message counts as posted only when it answered 200."""

    def __init__(self, clock: FixedClock):
        self.clock = clock
        self.requests: list[tuple[datetime, str]] = []
        self.posted: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        answer = slack_answer(self.clock.now() - T0)
        self.requests.append((self.clock.now(), answer))
        if answer == "hang":
            await asyncio.sleep(1.5)  # past the sink's 1 s timeout; then a failure anyway
            return web.Response(status=503, text="upstream_timeout")
        if answer == "429":
            return web.Response(status=429, headers={"Retry-After": str(RETRY_AFTER)},
                                text="rate_limited")
        if answer == "500":
            return web.Response(status=500, text="internal_error")
        self.posted.append(body)
        return web.Response(text="ok")


async def test_slack_down_for_minutes_then_back_gets_every_alert_exactly_once(
        store: Store, aiohttp_server: Any) -> None:
    clock = FixedClock(T0)
    slack = FakeSlack(clock)
    app = web.Application()
    app.router.add_post("/services/T0/B0/token", slack.handle)
    server = await aiohttp_server(app)
    config = sink_config({"kind": "slack", "name": "team-slack", "timeout": "1s",
                          "webhook_url": str(server.make_url("/services/T0/B0/token"))})
    outbox = AlertOutbox(store, {"team-slack": SlackSink(config, throttle=Throttle(0))},
                         Metrics(), clock)
    written = 0
    while clock.now() - T0 <= RECOVERS_AT + timedelta(minutes=3):
        if clock.now() - T0 <= ALERTS_UNTIL and clock.now() - T0 >= written * ALERT_EVERY:
            await write_alerts(store, "team-slack", [payload(id=written + 1)], clock.now())
            written += 1
        await outbox.run_once(clock.now())  # raises if the worker broke
        clock.advance(STEP)
    await outbox.close()

    async with store.read() as session:
        rows = list(await session.scalars(select(OutboxAlert)))
    assert len(rows) == written >= 30
    assert {row.state for row in rows} == {"sent"}, [r.last_error for r in rows]
    delivered = Counter(int(m) for body in slack.posted for m in set(LINK.findall(body)))
    assert delivered == Counter(range(1, written + 1))  # each alert once, none dropped

    failing = [(at, answer) for at, answer in slack.requests if answer != "200"]
    assert {answer for _, answer in failing} == {"500", "hang", "429"}
    assert len(failing) <= 20, "no back-off: Slack was hammered while it was down"
    for (at, answer), (later, _) in zip(slack.requests, slack.requests[1:], strict=False):
        if answer == "429":
            assert later - at >= timedelta(seconds=RETRY_AFTER), "Retry-After not honoured"
