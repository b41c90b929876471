"""The live feed: every page hears of every change, and one stuck page holds up no one."""

from __future__ import annotations

import asyncio
from typing import Any

from listener.live import LiveFeed, what_happened
from listener.store.actions import assign, mark_responded

GUARD = 10  # seconds: only so a broken feed fails the test instead of hanging it


async def read_all(subscription: Any) -> list[dict[str, Any]]:
    return [event async for event in subscription]


async def test_a_slow_subscriber_is_dropped_and_the_others_get_everything() -> None:
    feed = LiveFeed(queue_size=5)
    async with feed.subscribe() as stuck, feed.subscribe() as reader:
        reading = asyncio.create_task(read_all(reader))
        for n in range(50):
            feed.mentions_changed([n], "new")  # returns at once: nobody is awaited
            await asyncio.sleep(0)  # the reader's turn; the stuck page never reads
        assert stuck.dropped and not reader.dropped
        assert feed.subscribers == 1
        feed.close()
        received = await asyncio.wait_for(reading, GUARD)
        assert [event["ids"] for event in received] == [[n] for n in range(50)]
        # The dropped page's stream simply ends; its browser reconnects and re-reads.
        assert await asyncio.wait_for(read_all(stuck), GUARD) == []


async def test_closing_ends_every_subscription_even_one_waiting() -> None:
    feed = LiveFeed()
    async with feed.subscribe() as waiting:
        received: list[dict[str, Any]] = []

        async def read() -> None:
            async for event in waiting:
                received.append(event)

        task = asyncio.create_task(read())
        await asyncio.sleep(0)
        feed.mentions_changed([3, 1, 3], "assigned")
        await asyncio.sleep(0)
        assert received == [{"kind": "mention", "ids": [1, 3], "what": "assigned"}]
        feed.close()  # the reader is waiting for the next event: it stops waiting
        await asyncio.wait_for(task, GUARD)
    assert feed.subscribers == 0
    async with feed.subscribe() as late:  # after shutdown began: ends at once
        assert await asyncio.wait_for(read_all(late), GUARD) == []


async def test_publishing_with_nobody_listening_is_fine_and_leaving_unsubscribes() -> None:
    feed = LiveFeed()
    feed.mentions_changed([1], "new")
    async with feed.subscribe():
        assert feed.subscribers == 1
    assert feed.subscribers == 0
    feed.mentions_changed([2], "new")


def test_events_say_what_an_action_did() -> None:
    assert what_happened(assign) == "assigned"
    assert what_happened(mark_responded) == "answered"
    assert what_happened(print) == "changed"
