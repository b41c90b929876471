"""One alert delivery round in a process of its own, for a test to SIGKILL half-way:
`python -m tests.faults.outbox_round DB_URL RECEIVER_URL`."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

from listener.clock import FixedClock
from listener.metrics import Metrics
from listener.store import Store
from responders.alerts import build_sink
from responders.alerts.outbox import AlertOutbox
from tests.responders.hooks import T0, sink_config

SINK = "receiver"
ROUND_AT = T0 + timedelta(hours=1)


def receiver_outbox(store: Store, url: str) -> AlertOutbox:
    """The generic webhook sink, each message holding what was written within 1 s."""
    config: Any = sink_config({"kind": "webhook", "name": SINK, "url": url,
                               "secret": "fault-secret", "group_window": "1s"})
    return AlertOutbox(store, {SINK: build_sink(config)}, Metrics(), FixedClock(ROUND_AT))


async def deliver_once(db_url: str, url: str) -> int:
    store = Store.open(db_url)
    outbox = receiver_outbox(store, url)
    try:
        return await outbox.run_once(ROUND_AT)
    finally:
        await outbox.close()
        await store.close()


if __name__ == "__main__":
    asyncio.run(deliver_once(sys.argv[1], sys.argv[2]))
