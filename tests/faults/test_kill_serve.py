"""`listener serve` SIGKILLed 20 times at random moments (seeded) — while it starts, while
webhooks come in, right after a feed poll, right after Slack-like sinks took an alert —
and restarted each time. At the end every pushed and every polled item is stored once,
every due alert was received, and no alert was received twice except across a kill
(the outbox's documented window: the receiver took it, the process died before
recording it)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.serve_harness import (
    AlertReceiver,
    GrowingFeed,
    WebhookSender,
    serve_fakes,
    settle,
    webhook_batch,
    write_config,
)
from tests.test_serve import free_port, start, wait_ready

pytestmark = pytest.mark.slow
KILLS = 20
SEED = 12


async def test_twenty_sigkills_lose_nothing_and_store_nothing_twice(
        db_url: str, aiohttp_server: Any, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    feed, receiver = GrowingFeed(), AlertReceiver()
    feed.add(3)
    feed_url, alerts_url = await serve_fakes(aiohttp_server, feed, receiver)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, db_url, port, feed_url, alerts_url)
    sender = WebhookSender(base)
    stop_pushing = asyncio.Event()

    async def push_forever() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            n = 0
            while not stop_pushing.is_set():
                await sender.deliver(session, webhook_batch(f"b{n}", 5), pause=0.1)
                n += 1

    pusher = asyncio.create_task(push_forever())
    moments = []
    for generation in range(KILLS):
        receiver.generation = generation
        feed.add(2)
        process = start(config, tmp_path)
        moment = rng.choice(["starting", "serving", "after a poll", "after an alert"])
        moments.append(moment)
        try:
            if moment == "starting":
                await asyncio.sleep(rng.uniform(0.2, 2.0))
            else:
                await wait_ready(base, process, tmp_path)
                event = {"after a poll": feed.served, "after an alert": receiver.arrived,
                         "serving": asyncio.Event()}[moment]
                event.clear()
                await wait_or(event, rng.uniform(0.2, 1.5))
        finally:
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait, 30)

    receiver.generation = KILLS
    process = start(config, tmp_path)
    try:
        await wait_ready(base, process, tmp_path)
        stop_pushing.set()
        await asyncio.wait_for(pusher, 60)
        pushed = set(sender.sent)
        stored = await settle(db_url, lambda s: set(s.mentions) >= pushed | feed.guids
                              and s.pending == 0
                              and receiver.breached_mentions() >= s.by_source.get("hook", set()))
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 60)
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]

    assert len(set(moments)) == 4 and len(pushed) >= 100, moments  # the test did bite
    assert stored.duplicates() == []
    assert set(stored.mentions) == pushed | feed.guids  # nothing lost, nothing invented
    assert receiver.keys() == stored.outbox_keys  # every due alert was received
    assert receiver.repeats_within_one_process() == []  # repeats only across a kill
    assert len(receiver.repeated()) <= KILLS * 100  # at most a claim's worth per kill


async def wait_or(event: asyncio.Event, timeout: float) -> None:
    """Until `event` fires or `timeout` passes, whichever is first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
