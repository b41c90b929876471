"""The queue page's filters, as the server renders them."""

from __future__ import annotations

from typing import Any

from listener.app import init_app
from tests.web.test_api import mention, push


async def test_queue_filters_by_assignee_unassigned_and_state(aiohttp_client: Any,
                                                             services: Any) -> None:
    client = await aiohttp_client(init_app(services, background=False))
    await push(client, [
        mention("e-1", "Where is my invoice? <b>urgent</b>", channel="web", handle="eng"),
        mention("t-1", "Merhaba, faturam nerede?", channel="web", handle="tur"),
    ])
    everything = await (await client.get("/")).text()
    assert "@eng" in everything and "@tur" in everything
    assert "&lt;b&gt;urgent&lt;/b&gt;" in everything and "<b>urgent</b>" not in everything
    johns = await (await client.get("/?assignee=john")).text()
    assert "@eng" in johns and "@tur" not in johns
    unassigned = await (await client.get("/?assignee=")).text()
    assert "@tur" in unassigned and "@eng" not in unassigned
    breached = await (await client.get("/?state=breached")).text()
    assert "Nothing open matches this filter." in breached
    hostile = await (await client.get('/?assignee="><script>x</script>')).text()
    assert "<script>x</script>" not in hostile
