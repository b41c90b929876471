"""The queue page's filters, as the server renders them."""

from __future__ import annotations

from datetime import timedelta
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


async def test_queue_page_shows_a_failing_source(aiohttp_client: Any, db_url: str, clock: Any,
                                                 enricher: Any) -> None:
    from connectors.base import SourceError
    from tests.test_coordinator import ScriptedConnector, setup

    connector = ScriptedConnector([])
    services = await setup(db_url, clock, enricher, connector)
    await services.coordinator.poll("demo")
    client = await aiohttp_client(init_app(services, background=False))
    assert "demo ok" in await (await client.get("/")).text()
    connector.fail_with = SourceError("502 Bad Gateway <from upstream>")
    clock.advance(timedelta(minutes=3))
    await services.coordinator.poll("demo")
    page = await (await client.get("/")).text()
    assert "source-failing" in page
    assert "502 Bad Gateway &lt;from upstream&gt;" in page
    assert "last success 3m ago" in page


async def test_alert_links_land_on_the_mention_page(aiohttp_client: Any, services: Any) -> None:
    client = await aiohttp_client(init_app(services, background=False))
    await push(client, mention("w-1", "Fatura <script>alert(1)</script> iki kez!",
                               channel="web", handle="deniz", name="Deniz <b>K</b>"))
    page = await client.get("/mentions/1")
    html = await page.text()
    assert page.status == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "Deniz &lt;b&gt;K&lt;/b&gt;" in html and "@deniz" in html
    assert "left" in html and "same-day" in html and "ingested" in html
    assert (await client.get("/mentions/999")).status == 404
