"""The alert delivery worker SIGKILLed while a receiver holds one message: every message
it had delivered before stays recorded as sent, so the next round repeats only the one
in flight (at-least-once costs one message per kill, not a whole claim of them)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from listener import db
from listener.models import OutboxAlert
from listener.store import Store
from tests.faults.outbox_round import SINK, deliver_once
from tests.responders.hooks import HANG, T0, FakeHook, payload, write_alerts

ROOT = Path(__file__).resolve().parents[2]
GROUPS, PER_GROUP = 5, 3


def received_keys(hook: FakeHook) -> Counter[str]:
    return Counter(alert["dedupe_key"] for message in hook.received
                   for alert in message.json()["alerts"])


async def states(store: Store) -> Counter[str]:
    async with store.read() as session:
        return Counter(await session.scalars(select(OutboxAlert.state)))


async def wait_for_messages(hook: FakeHook, count: int, process: subprocess.Popen[bytes]
                            ) -> None:
    for _ in range(300):
        if len(hook.received) >= count:
            return
        assert process.poll() is None, "the delivery round ended before the receiver hung"
        await asyncio.sleep(0.1)
    raise AssertionError(f"only {len(hook.received)} message(s) arrived")


async def test_a_kill_mid_round_repeats_only_the_message_in_flight(
        db_url: str, aiohttp_server: Any) -> None:
    store = Store.open(db_url)
    await db.migrate(store.engine)
    # Five messages of three alerts each: written a minute apart, 1 s group window.
    created = [T0 + timedelta(minutes=g) for g in range(GROUPS) for _ in range(PER_GROUP)]
    await write_alerts(store, SINK, [payload(id=n) for n in range(len(created))], created)
    hook = FakeHook((200, {}, "ok"), (200, {}, "ok"), HANG)
    url = str((await aiohttp_server(hook.app())).make_url("/alerts"))
    process = subprocess.Popen([sys.executable, "-m", "tests.faults.outbox_round", db_url, url],
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        await wait_for_messages(hook, 3, process)
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 30)
        assert await states(store) == {"sent": 2 * PER_GROUP, "pending": 3 * PER_GROUP}

        hook.release.set()
        assert await deliver_once(db_url, url) == 3 * PER_GROUP
        assert await states(store) == {"sent": GROUPS * PER_GROUP}
        keys = received_keys(hook)
        in_flight = {a["dedupe_key"] for a in hook.received[2].json()["alerts"]}
        assert len(keys) == GROUPS * PER_GROUP  # every alert arrived
        assert {key for key, n in keys.items() if n > 1} == in_flight  # only it twice
        assert len(in_flight) == PER_GROUP
    finally:
        if process.poll() is None:
            process.kill()
        await store.close()
