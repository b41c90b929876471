"""`GET /api/v1/alerts`: what the team sees of alert delivery, after the worker ran
against a real (local) Slack stand-in. Runs on both databases."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from listener.app import build_services, init_app
from listener.models import OutboxAlert
from responders.alerts.outbox import AlertOutbox
from tests.conftest import MONDAY_10, make_config
from tests.web.test_api import AUTH, mention, push

ALERTS = "/api/v1/alerts"
HOOK_PATH = "/services/T000/B000/very-secret-token"


async def add_alerts(services: Any, rows: list[dict[str, Any]], sink: str = "team-slack",
                     payload: dict[str, Any] | None = None) -> list[int]:
    """Outbox rows as the SLA engine writes them, one second apart, oldest first."""
    ids = []
    async with services.store.write() as session:
        for index, row in enumerate(rows):
            created = MONDAY_10 + timedelta(seconds=index)
            alert = OutboxAlert(**{
                "dedupe_key": f"{row.get('mention_id')}:{row['kind']}:{index}:{sink}",
                "sink": sink, "payload": payload or {"kind": row["kind"]},
                "created_at": created, "next_attempt_at": created, "attempts": 0,
                "state": "pending", **row})
            session.add(alert)
            await session.flush()
            ids.append(alert.id)
    return ids


async def test_the_alert_log_shows_each_delivery_and_never_the_webhook_url(
        aiohttp_client: Any, aiohttp_server: Any, db_url: str, clock: Any,
        enricher: Any) -> None:
    answers = [web.Response(status=404, text="no_service"), web.Response(text="ok")]

    async def slack(request: web.Request) -> web.Response:
        return answers.pop(0)

    hook = web.Application()
    hook.router.add_post(HOOK_PATH, slack)
    server = await aiohttp_server(hook)
    url = str(server.make_url(HOOK_PATH))
    config = make_config(db_url, alerts=[
        {"kind": "slack", "name": "team-slack", "webhook_url": url, "on": ["breached"]}])
    services = build_services(config, clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    await push(client, [mention("w-1", "Where is my refund?", channel="web")])
    [mention_id] = [m["id"] for m in (await (await client.get(
        "/api/v1/mentions", headers=AUTH)).json())["items"]]
    await add_alerts(services, [{"mention_id": mention_id, "kind": "breached"}])
    outbox = AlertOutbox.from_config(config, services.store, services.metrics, clock)
    assert await outbox.run_once(clock.now()) == 0          # Slack: 404 no_service
    clock.advance(timedelta(hours=1))                       # the operator fixed the hook
    await add_alerts(services, [{"mention_id": mention_id, "kind": "at_risk",
                                 "created_at": clock.now(), "next_attempt_at": clock.now()}])
    assert await outbox.run_once(clock.now()) == 1
    await outbox.close()

    response = await client.get(ALERTS, headers=AUTH)
    assert response.status == 200
    text = await response.text()
    assert "very-secret-token" not in text and HOOK_PATH not in text
    newest, oldest = json.loads(text)["items"]
    assert (newest["kind"], newest["state"], newest["attempts"]) == ("at_risk", "sent", 1)
    assert datetime.fromisoformat(newest["sent_at"]) == clock.now()
    assert newest["next_attempt_at"] is None
    assert (oldest["kind"], oldest["state"], oldest["sink"]) == ("breached", "failed",
                                                                 "team-slack")
    assert oldest["last_error"] == "HTTP 404: no_service" and oldest["sent_at"] is None
    assert oldest["mention_id"] == mention_id

    failed = await (await client.get(ALERTS, params={"state": "failed"}, headers=AUTH)).json()
    assert [a["id"] for a in failed["items"]] == [oldest["id"]]
    one = await (await client.get(ALERTS, params={"limit": "1"}, headers=AUTH)).json()
    assert [a["id"] for a in one["items"]] == [newest["id"]]
    assert (await client.get(ALERTS)).status == 401


async def test_bad_filters_are_refused_with_the_allowed_values(
        aiohttp_client: Any, services: Any) -> None:
    client = await aiohttp_client(init_app(services, background=False))
    response = await client.get(ALERTS, params={"state": "lost"}, headers=AUTH)
    assert response.status == 400
    assert "pending, sent, failed" in (await response.json())["error"]["message"]
    response = await client.get(ALERTS, params={"limit": "-1"}, headers=AUTH)
    assert response.status == 400
