"""`GET /api/v1/sources`: what an operator checks when a platform goes quiet."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.base import AuthFailed
from listener.app import build_services, init_app, prepare_database
from tests.conftest import make_config
from tests.test_coordinator import ScriptedConnector, item, replay_source
from tests.web.test_api import AUTH


async def sources_client(aiohttp_client: Any, db_url: str, clock: Any, enricher: Any,
                         connector: Any) -> tuple[Any, Any]:
    config = make_config(db_url, sources=[
        replay_source(Path("unused.jsonl"), interval="2m"),
        {"id": "x-brand", "kind": "twitter", "query": "acme", "bearer_token": "tok-secret-1",
         "enabled": False},
        {"id": "site-form", "kind": "webhook", "secret": "s3cret-hook", "channel": "form"},
    ])
    services = build_services(config, clock=clock, enricher=enricher)
    services.coordinator.sources["demo"].connector = connector
    await prepare_database(services, migrate=True)
    return await aiohttp_client(init_app(services, background=False)), services


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def listed(client: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/sources", headers=AUTH)
    assert response.status == 200
    return {s["id"]: s for s in (await response.json())["items"]}


async def test_sources_show_health_last_poll_and_next_poll(aiohttp_client: Any, db_url: str,
                                                           clock: Any, enricher: Any) -> None:
    connector = ScriptedConnector([item(1, clock.now()), item(2, clock.now())])
    client, services = await sources_client(aiohttp_client, db_url, clock, enricher, connector)
    before = await listed(client)
    assert before["demo"]["health"] == "never_polled"
    assert before["x-brand"] | {"health": "disabled", "enabled": False, "channel": "twitter",
                                "kind": "twitter"} == before["x-brand"]
    assert before["site-form"]["health"] == "push" and before["site-form"]["channel"] == "form"
    assert "tok-secret-1" not in str(before)

    assert await services.coordinator.poll("demo") == "ok"
    demo = (await listed(client))["demo"]
    assert demo["health"] == "ok" and demo["last_poll_items"] == 2
    assert at(demo["last_success_at"]) == clock.now()
    assert demo["consecutive_failures"] == 0 and demo["interval_seconds"] == 120
    assert at(demo["next_poll_at"]) - clock.now() >= timedelta(minutes=2)

    clock.advance(timedelta(minutes=3))
    assert await services.coordinator.poll("demo") == "ok"
    assert (await listed(client))["demo"]["last_poll_items"] == 0


async def test_refused_credentials_mark_the_source_unhealthy_and_say_what_to_check(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any) -> None:
    connector = ScriptedConnector([])
    client, services = await sources_client(aiohttp_client, db_url, clock, enricher, connector)
    connector.fail_with = AuthFailed("401 from upstream: credentials refused; check "
                                     "sources[].bearer_token")
    assert await services.coordinator.poll("demo") == "auth_failed"
    demo = (await listed(client))["demo"]
    assert demo["health"] == "auth_failed"
    assert "check sources[].bearer_token" in demo["last_error"]
    assert demo["consecutive_failures"] == 1
    assert at(demo["next_poll_at"]) == clock.now() + timedelta(hours=1)
    metric = services.metrics.registry.get_sample_value(
        "listener_source_polls_total", {"source": "demo", "outcome": "auth_failed"})
    assert metric == 1


async def test_sources_need_a_token(aiohttp_client: Any, db_url: str, clock: Any,
                                    enricher: Any) -> None:
    client, _ = await sources_client(aiohttp_client, db_url, clock, enricher,
                                     ScriptedConnector([]))
    assert (await client.get("/api/v1/sources")).status == 401
