"""The REST API as a client uses it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from connectors.webhook import sign
from listener.app import init_app
from tests.conftest import IST

AUTH = {"Authorization": "Bearer test-token"}
SECRET = "s3cret-hook"


def mention(
    ident: str,
    text: str = "Siparişim hâlâ gelmedi, rezalet!",
    *,
    created_at: datetime | None = None,
    channel: str = "twitter",
    handle: str = "musteri1",
    email: str | None = None,
    name: str = "Ali Veli",
) -> dict[str, Any]:
    author: dict[str, Any] = {"handle": handle, "name": name}
    if email:
        author["email"] = email
    return {
        "id": ident,
        "text": text,
        "channel": channel,
        "author": author,
        "created_at": (created_at or datetime(2026, 11, 23, 9, 30, tzinfo=IST)).isoformat(),
        "url": f"https://x.com/{handle}/status/{ident}",
    }


async def push(client: Any, payload: Any, secret: str = SECRET, source: str = "site-form") -> Any:
    body = json.dumps(payload).encode()
    return await client.post(
        f"/api/v1/webhooks/{source}",
        data=body,
        headers={"X-Listener-Signature": sign(secret, body), "Content-Type": "application/json"},
    )


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


async def listed(client: Any, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/mentions{query}", headers=AUTH)
    assert response.status == 200
    return (await response.json())["items"]


async def test_api_refuses_requests_without_a_valid_token(client: Any) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic eA=="},
        {"Authorization": "Bearer "},
    ):
        response = await client.get("/api/v1/mentions", headers=headers)
        assert response.status == 401
        body = await response.json()
        assert body["error"]["code"] == "unauthorized"
        assert "test-token" not in json.dumps(body)


async def test_an_empty_configured_token_never_matches(
    aiohttp_client: Any, db_url: str, clock: Any, enricher: Any
) -> None:
    from listener.app import build_services
    from tests.conftest import make_config

    services = build_services(
        make_config(db_url, server={"api_tokens": [""]}), clock=clock, enricher=enricher
    )
    client = await aiohttp_client(init_app(services, background=False))
    response = await client.get("/api/v1/mentions", headers={"Authorization": "Bearer "})
    assert response.status == 401


async def test_signed_webhook_is_stored_routed_and_given_a_same_day_deadline(client: Any) -> None:
    response = await push(
        client,
        mention("t-1", "My order never arrived, terrible service", handle="jane", name="Jane"),
    )
    assert response.status == 202
    assert (await response.json())["stored"] == 1
    [item] = await listed(client)
    assert item["external_id"] == "t-1"
    assert item["source"] == "site-form" and item["channel"] == "twitter"
    assert item["lang"] == "en" and item["sentiment"] < 0
    assert item["assignee"] in ("ayse", "john") and item["status"] == "assigned"
    assert item["sla"]["policy"] == "social-same-day"
    assert datetime.fromisoformat(item["sla"]["deadline_at"]) == datetime(
        2026, 11, 23, 18, 0, tzinfo=IST
    )
    assert item["sla"]["state"] == "on_track"
    assert item["author"]["handle"] == "jane"


async def test_bad_signature_stores_nothing(client: Any) -> None:
    response = await push(client, mention("t-1"), secret="guessed")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "bad_signature"
    body = json.dumps(mention("t-2")).encode()
    unsigned = await client.post("/api/v1/webhooks/site-form", data=body)
    assert unsigned.status == 401
    assert await listed(client) == []


async def test_one_bad_object_rejects_the_whole_batch(client: Any) -> None:
    broken = mention("t-2")
    del broken["author"]
    response = await push(client, [mention("t-1"), broken])
    assert response.status == 422
    message = (await response.json())["error"]["message"]
    assert "[1]" in message and "author" in message
    assert await listed(client) == []
    garbage = await push(client, "not a mention")
    assert garbage.status == 422


async def test_webhook_to_unknown_source_is_404(client: Any) -> None:
    response = await push(client, mention("t-1"), source="nope")
    assert response.status == 404


async def test_pushing_the_same_mention_twice_stores_it_once(client: Any) -> None:
    assert (await push(client, mention("t-1"))).status == 202
    again = await push(client, [mention("t-1"), mention("t-1")])
    assert (await again.json())["stored"] == 0
    assert len(await listed(client)) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'listener_mentions_duplicate_total{source="site-form"} 2.0' in metrics
    assert 'listener_mentions_ingested_total{channel="twitter",source="site-form"} 1.0' in metrics


async def test_filters_and_cursor_pagination_walk_every_mention_once(client: Any) -> None:
    batch = [
        mention(f"m-{i}", f"question number {i} about my invoice", channel="web", handle=f"user{i}")
        for i in range(7)
    ]
    batch.append(mention("tw-1", "kargo nerede", channel="twitter", handle="x"))
    assert (await push(client, batch)).status == 202
    seen: list[int] = []
    cursor = None
    while True:
        query = "?channel=web&limit=3" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(f"/api/v1/mentions{query}", headers=AUTH)
        page = await response.json()
        seen += [m["id"] for m in page["items"]]
        assert all(m["channel"] == "web" for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 == len(set(seen))
    assert [m["external_id"] for m in await listed(client, "?q=number%203")] == ["m-3"]
    assert len(await listed(client, "?sla_state=on_track")) == 8
    bad = await client.get("/api/v1/mentions?cursor=%%%", headers=AUTH)
    assert bad.status == 400
    bad_state = await client.get("/api/v1/mentions?sla_state=late", headers=AUTH)
    assert (await bad_state.json())["error"]["code"] == "bad_request"


async def test_detail_shows_the_customer_across_channels(client: Any) -> None:
    first = mention(
        "w-1",
        "Faturam iki kez kesildi",
        channel="web",
        handle="form-123",
        email="Deniz@Example.com",
        name="Deniz Kaya",
    )
    second = mention(
        "e-1",
        "Yine yazıyorum, fatura sorunu çözülmedi",
        channel="email",
        handle="deniz@example.com",
        email="deniz@example.com",
        name="Deniz Kaya",
    )
    await push(client, [first, second])
    items = await listed(client)
    assert items[0]["customer_id"] == items[1]["customer_id"]
    response = await client.get(f"/api/v1/mentions/{items[0]['id']}", headers=AUTH)
    detail = await response.json()
    assert {h["channel"] for h in detail["customer"]["history"]} == {"web", "email"}
    assert detail["customer"]["email"] == "deniz@example.com"
    customer = await client.get(f"/api/v1/customers/{items[0]['customer_id']}", headers=AUTH)
    assert len((await customer.json())["accounts"]) == 2
    missing = await client.get("/api/v1/mentions/999999", headers=AUTH)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


async def test_assign_and_respond_stop_the_clock(client: Any, clock: Any) -> None:
    await push(client, mention("t-1", channel="web", handle="a"))
    [item] = await listed(client)
    url = f"/api/v1/mentions/{item['id']}"
    unknown = await client.post(f"{url}/assign", json={"agent": "nobody"}, headers=AUTH)
    assert unknown.status == 422
    assigned = await client.post(f"{url}/assign", json={"agent": "john"}, headers=AUTH)
    assert (await assigned.json())["assignee"] == "john"
    clock.advance(timedelta(minutes=45))
    responded = await client.post(f"{url}/respond", json={"note": "called back"}, headers=AUTH)
    body = await responded.json()
    assert body["status"] == "responded"
    assert body["sla"]["state"] == "met"
    assert body["sla"]["response_seconds"] == 75 * 60
    clock.advance(timedelta(days=2))
    [later] = await listed(client)
    assert later["sla"]["state"] == "met"
    twice = await client.post(f"{url}/respond", json={}, headers=AUTH)
    assert twice.status == 409
    metrics = await (await client.get("/metrics")).text()
    labels = '{channel="web",policy="same-day"}'
    assert f"listener_first_response_seconds_count{labels} 1.0" in metrics
    assert f"listener_first_response_seconds_sum{labels} 4500.0" in metrics
    assert f"listener_sla_met_total{labels} 1.0" in metrics


async def test_unanswered_mention_goes_at_risk_then_breached(client: Any, clock: Any) -> None:
    await push(client, mention("t-1", channel="web", handle="a"))
    clock.advance(timedelta(hours=7, minutes=1))  # 17:01, deadline 18:00, at risk from 17:00
    assert (await listed(client))[0]["sla"]["state"] == "at_risk"
    clock.advance(timedelta(hours=1))
    [item] = await listed(client, "?sla_state=breached")
    assert item["sla"]["time_left"].startswith("overdue by")
    response = await client.post(f"/api/v1/mentions/{item['id']}/respond", json={}, headers=AUTH)
    assert (await response.json())["sla"]["state"] == "missed"


async def test_agents_summary_health_and_openapi(client: Any) -> None:
    await push(
        client, mention("t-1", "Where is my parcel? It is late again", channel="web", handle="a")
    )
    agents = await (await client.get("/api/v1/agents", headers=AUTH)).json()
    assert {a["id"] for a in agents["items"]} == {"ayse", "john"}
    assert sum(a["open"] for a in agents["items"]) == 1
    summary = await (await client.get("/api/v1/sla/summary", headers=AUTH)).json()
    assert summary["states"]["on_track"] == 1
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/mentions/{id}/respond" in spec["paths"]
    assert "/api/v1/webhooks/{source_id}" in spec["paths"]


async def test_concurrent_pushes_sharing_customers_all_land_once(client: Any) -> None:
    import asyncio

    def batch(n: int) -> list[dict[str, Any]]:
        # every batch shares the same ten customers and half its ids with the next batch
        return [mention(f"c-{i}", f"Order {i} is late", channel="web", handle=f"u{i % 10}",
                        email=f"u{i % 10}@example.com", name=f"User {i % 10}")
                for i in range(n * 15, n * 15 + 30)]

    responses = await asyncio.gather(*(push(client, batch(n)) for n in range(8)))
    assert [r.status for r in responses] == [202] * 8
    stored = sum([(await r.json())["stored"] for r in responses])
    assert stored == 8 * 15 + 15
    items = await listed(client, "?limit=500")
    assert len(items) == stored == len({m["external_id"] for m in items})
    assert len({m["customer_id"] for m in items}) == 10


async def test_odd_input_is_a_clear_client_error_not_a_crash(client: Any) -> None:
    """Found by schemathesis: each of these used to be a 500 on PostgreSQL."""
    await push(client, mention("t-1"))
    [item] = await listed(client)
    for path in ("/api/v1/mentions/2147483648", "/api/v1/mentions/²",
                 "/api/v1/customers/" + "9" * 12):
        response = await client.get(path, headers=AUTH)
        assert response.status == 404, path
    for by in (7, "x" * 101):
        response = await client.post(f"/api/v1/mentions/{item['id']}/respond",
                                     json={"by": by}, headers=AUTH)
        assert response.status == 422
        assert "by must be a string" in (await response.json())["error"]["message"]
    nul = await client.get("/api/v1/mentions?channel=%00", headers=AUTH)
    assert nul.status == 400 and "NUL" in (await nul.json())["error"]["message"]
    odd_limit = await client.get("/api/v1/mentions?limit=1_0", headers=AUTH)
    assert odd_limit.status == 400
    wrong_method = await client.delete("/api/v1/agents", headers=AUTH)
    assert wrong_method.status == 405 and "GET" in wrong_method.headers["Allow"]
    [still] = await listed(client)
    assert still["status"] == item["status"]
