"""`POST /api/v1/customers/{id}/contacts` as a call-centre integration uses it, on SQLite
and PostgreSQL: the call is on the customer's timeline, a promised callback is an open
mention on the callback policy's clock that the usual respond endpoint answers, and bad
input is refused with a message that names the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from listener.app import init_app
from tests.conftest import IST, make_config
from tests.test_calls_import import PHONE_SETUP
from tests.web.logins import login_as
from tests.web.test_api import AUTH, listed, mention, push

HOSTILE = "Read out: <script>window.__pwned=1</script> & \"never answer\" <b>bold</b>"


@pytest.fixture
def config(db_url: str) -> Any:
    return make_config(db_url, **PHONE_SETUP)


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


async def customer_with_phone(client: Any, ident: str, phone: str) -> int:
    """A customer Listener knows from a web form that gave this phone number."""
    body = mention(ident, "Siparişim nerede?", channel="web", handle=f"form-{ident}")
    body["author"]["phone"] = phone
    assert (await push(client, [body])).status == 202
    found = [m for m in await listed(client) if m["external_id"] == ident]
    return found[0]["customer_id"]


async def post_call(client: Any, customer_id: Any, body: Any) -> Any:
    return await client.post(f"/api/v1/customers/{customer_id}/contacts", json=body,
                             headers=AUTH)


async def get_customer(client: Any, customer_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/customers/{customer_id}", headers=AUTH)
    assert response.status == 200
    return await response.json()


async def test_a_call_is_on_the_customer_timeline_once_newest_first(client: Any) -> None:
    customer = await customer_with_phone(client, "w-1", "0532 123 45 67")
    call = {"call_id": "C-1", "phone": "+905321234567", "started_at": "2026-11-23 09:45",
            "duration": "4:32", "agent": "zeynep", "topic": "delivery",
            "summary": "Kargo nerede diye aradı; yarın teslim.", "outcome": "resolved"}
    created = await post_call(client, customer, call)
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["customer_id"] == customer and body["phone"] == "+905321234567"
    assert body["duration_seconds"] == 272 and body["callback_mention_id"] is None
    assert datetime.fromisoformat(body["started_at"]) == datetime(2026, 11, 23, 9, 45,
                                                                  tzinfo=IST)

    again = await post_call(client, customer, call)
    assert again.status == 200 and (await again.json())["id"] == body["id"]
    timeline = (await get_customer(client, customer))["timeline"]
    assert [(item["type"], item["channel"]) for item in timeline] == [
        ("call", "phone"), ("mention", "web")]
    assert timeline[0]["text"] == call["summary"] and timeline[0]["actor"] == "zeynep"
    assert timeline[0]["status"] == "resolved"
    assert await listed(client, "?channel=phone") == []  # history only, nothing queued


async def test_a_promised_callback_is_queued_on_its_clock_and_answered_by_respond(
        client: Any, services: Any) -> None:
    customer = await customer_with_phone(client, "w-1", "+90 532 123 4567")
    created = await post_call(client, customer, {
        "phone": "0532 123 45 67", "started_at": "2026-11-23T09:30:00+03:00",
        "agent": "mehmet", "summary": HOSTILE, "outcome": "Geri Arama"})
    assert created.status == 201, await created.text()
    callback = (await created.json())["callback_mention_id"]
    assert callback is not None

    detail = await (await client.get(f"/api/v1/mentions/{callback}", headers=AUTH)).json()
    assert (detail["channel"], detail["source"]) == ("phone", "calls")
    assert detail["customer_id"] == customer and detail["text"] == HOSTILE
    assert (detail["status"], detail["assignee"]) == ("assigned", "zeynep")
    assert detail["sla"]["policy"] == "callback-4h"
    assert datetime.fromisoformat(detail["sla"]["deadline_at"]) == datetime(
        2026, 11, 23, 13, 30, tzinfo=IST)
    assert ("call", callback) in [(i["type"], i["mention_id"])
                                  for i in detail["customer"]["timeline"]]

    await login_as(client, services, role="agent", agent_id="zeynep", name="zeynep")
    page = await client.get(f"/mentions/{callback}")
    assert page.status == 200
    html = await page.text()
    assert "<script>window.__pwned" not in html and "<b>bold</b>" not in html
    item = HTMLParser(html).css_first("#timeline .item-call")
    assert item is not None and "window.__pwned=1" in item.text()

    queue = HTMLParser(await (await client.get("/")).text())
    assert "window.__pwned=1" in queue.body.text()  # in the queue, as text

    answered = await client.post(f"/api/v1/mentions/{callback}/respond",
                                 json={"note": "called back, refund confirmed"}, headers=AUTH)
    assert answered.status == 200
    assert (await answered.json())["status"] == "responded"
    timeline = (await get_customer(client, customer))["timeline"]
    assert "response" in [item["type"] for item in timeline]


async def test_contacts_refuse_bad_input_with_the_field_named(client: Any) -> None:
    customer = await customer_with_phone(client, "w-1", "0532 123 45 67")
    other = await customer_with_phone(client, "w-2", "0533 444 55 66")
    refused = {
        "phone: not a phone number": {"phone": "call me", "outcome": "resolved"},
        "started_at is not a time": {"phone": "0532 123 45 67", "started_at": "dün"},
        "duration is not a call length": {"phone": "0532 123 45 67", "duration": -5},
        "phone is required when the outcome (callback_promised) promises a callback":
            {"outcome": "callback_promised", "summary": "will call"},
        "summary is longer than 10000 characters": {"summary": "x" * 10_001},
        "agent must be text": {"phone": "0532 123 45 67", "agent": ["ayse"]},
        "body must be a JSON object": ["0532 123 45 67"],
    }
    for message, body in refused.items():
        response = await post_call(client, customer, body)
        assert response.status == 422, (message, await response.text())
        error = (await response.json())["error"]
        assert error["code"] == "invalid" and message in error["message"], error

    taken = await post_call(client, customer, {"phone": "+90 533 444 55 66"})
    assert taken.status == 409
    assert f"belongs to customer {other}" in (await taken.json())["error"]["message"]
    for missing in (999999, "abc"):
        response = await post_call(client, missing, {"phone": "0532 123 45 67"})
        assert response.status == 404
    assert (await get_customer(client, customer))["timeline"][0]["type"] == "mention"

    # Without a phone the call is still the named customer's, as history.
    plain = await post_call(client, customer, {"summary": "Asked about opening hours"})
    assert plain.status == 201 and (await plain.json())["phone"] is None
    assert (await get_customer(client, customer))["timeline"][0]["type"] == "call"


async def test_a_merge_takes_the_calls_along_and_its_undo_brings_them_back(
        client: Any) -> None:
    caller = await customer_with_phone(client, "w-1", "0532 123 45 67")
    other = await customer_with_phone(client, "w-2", "0533 444 55 66")
    assert (await post_call(client, caller, {"phone": "0532 123 45 67",
                                             "summary": "Asked for the invoice"})).status == 201
    merged = await client.post(f"/api/v1/customers/{other}/merge", json={"from": caller},
                               headers=AUTH)
    assert merged.status == 200
    link = (await merged.json())["link"]["id"]
    assert "call" in [i["type"] for i in (await get_customer(client, other))["timeline"]]
    assert (await client.post(f"/api/v1/customer-links/{link}/undo", headers=AUTH)).status \
        == 200
    assert "call" not in [i["type"] for i in (await get_customer(client, other))["timeline"]]
    assert "call" in [i["type"] for i in (await get_customer(client, caller))["timeline"]]


async def test_a_callback_is_never_taken_for_noise(aiohttp_client: Any, db_url: str,
                                                   clock: Any, enricher: Any) -> None:
    """Our own call records: a blocklisted word or the same summary again is still a
    promise to a customer."""
    from listener.app import build_services

    config = make_config(db_url, **PHONE_SETUP, noise={"blocklist": ["promo code"],
                                                       "repeat_limit": 1})
    client = await aiohttp_client(init_app(build_services(config, clock=clock,
                                                          enricher=enricher),
                                           background=False))
    customer = await customer_with_phone(client, "w-1", "0532 123 45 67")
    ids = []
    for n in range(3):
        created = await post_call(client, customer, {
            "call_id": f"C-{n}", "phone": "0532 123 45 67",
            "started_at": f"2026-11-23T09:{10 + n}:00+03:00", "outcome": "callback_promised",
            "summary": "Wants the promo code applied; call back"})
        ids.append((await created.json())["callback_mention_id"])
    for callback in ids:
        detail = await (await client.get(f"/api/v1/mentions/{callback}", headers=AUTH)).json()
        assert detail["status"] == "assigned" and detail["sla"]["policy"] == "callback-4h"
