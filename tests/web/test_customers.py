"""Customers across channels as a care team sees them, on SQLite and PostgreSQL: linked
only on strong identifiers, CRM segments that route, and merges that can be undone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from listener.app import build_services, init_app
from listener.customers_import import import_customers
from listener.models import CustomerLink
from tests.conftest import BASE_CONFIG, make_config
from tests.web.test_api import AUTH, listed, mention, push

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def config(db_url: str) -> Any:
    """The usual setup plus what a CRM segment drives: VIPs go to John, on a 1h clock."""
    return make_config(
        db_url,
        routing={"rules": [{"match": {"segment": "vip"}, "agents": ["john"]}]},
        sla={"policies": [
            {"name": "vip", "match": {"segment": "vip"}, "first_response": "1h",
             "at_risk": "15m"},
            *BASE_CONFIG["sla"]["policies"],
        ]},
    )


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


def with_phone(ident: str, phone: str, **kwargs: Any) -> dict[str, Any]:
    body = mention(ident, **kwargs)
    body["author"]["phone"] = phone
    return body


async def customer_of(client: Any, external_id: str) -> dict[str, Any]:
    found = [m for m in await listed(client, "?limit=500") if m["external_id"] == external_id]
    response = await client.get(f"/api/v1/customers/{found[0]['customer_id']}", headers=AUTH)
    return await response.json()


async def links(services: Any) -> list[CustomerLink]:
    async with services.store.read() as session:
        return list(await session.scalars(select(CustomerLink).order_by(CustomerLink.id)))


async def test_the_same_display_name_never_links_two_accounts(client: Any) -> None:
    await push(client, [
        mention("t-1", handle="ali", name="Ali Veli"),
        mention("m-1", channel="mastodon", handle="ali", name="Ali Veli"),
        mention("w-1", channel="web", handle="form-9", name="Ali Veli"),
    ])
    assert len({m["customer_id"] for m in await listed(client)}) == 3


async def test_email_and_phone_link_accounts_whatever_the_format(client: Any,
                                                                 services: Any) -> None:
    await push(client, [
        with_phone("w-1", "0532 123 45 67", channel="web", handle="form-1", name="Ayşe"),
        with_phone("e-1", "+90 (532) 123-4567", channel="email", handle="ayse@example.com",
                   email="ayse@example.com", name="A. Yılmaz"),
        mention("t-1", handle="ayse_y", email="Ayse@Example.com", name="ayşe"),
    ])
    assert len({m["customer_id"] for m in await listed(client)}) == 1
    customer = await customer_of(client, "w-1")
    kinds = sorted((i["kind"], i["value"]) for i in customer["identities"])
    assert ("phone", "+905321234567") in kinds and ("email", "ayse@example.com") in kinds
    assert [(link.action, link.actor) for link in await links(services)] == [
        ("link", "auto:email"), ("link", "auto:phone")]


async def test_crm_import_is_idempotent_and_reports_bad_lines(services: Any,
                                                              tmp_path: Path,
                                                              capsys: Any) -> None:
    crm = tmp_path / "crm.csv"
    crm.write_text(
        (EXAMPLES / "customers.csv").read_text()
        + "CRM-9,Broken Phone,not-a-phone,,,\n"
        + ",No Id,nobody@example.com,,,\n"
        + "CRM-10,Bad Value,x@example.com,,lots,\n",
        encoding="utf-8")
    first = await import_customers(services, crm, progress=False)
    assert first.summary() == "7 customers: 4 created, 0 updated, 3 rejected"
    assert [n for n, _ in first.bad_lines] == [6, 7, 8]
    assert "line 6: skipped: identities: not a phone number" in capsys.readouterr().err
    again = await import_customers(services, crm, progress=False)
    assert again.summary() == "7 customers: 0 created, 4 updated, 3 rejected"
    jsonl = tmp_path / "crm.jsonl"
    jsonl.write_text('{"external_id": "CRM-1001", "segment": "vip", "lifetime_value": 50000,'
                     ' "identities": ["0532 111 22 33"]}\nnot json\n', encoding="utf-8")
    third = await import_customers(services, jsonl, progress=False)
    assert third.summary() == "2 customers: 0 created, 1 updated, 1 rejected"
    assert third.bad_lines[0][0] == 2


async def test_a_crm_vip_is_routed_and_timed_as_vip_on_any_account(
        aiohttp_client: Any, config: Any, clock: Any, enricher: Any, tmp_path: Path) -> None:
    services = build_services(config, clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    await push(client, [mention("t-0", handle="aliveli", name="Ali")])  # seen before the CRM
    before = (await listed(client))[0]
    assert before["sla"]["policy"] != "vip"
    report = await import_customers(services, EXAMPLES / "customers.csv", progress=False)
    assert not report.bad_lines
    english = "My order is late again"
    await push(client, [
        mention("t-1", handle="aliveli", name="Ali"),  # the account seen before
        with_phone("w-1", "+905321112233", text=english, channel="web", handle="form-5",
                   name="A"),
        mention("e-1", english, channel="email", handle="x", email="ALI.VELI@example.com"),
    ])
    everything = await listed(client)
    assert len({m["customer_id"] for m in everything}) == 1  # t-0 moved to the CRM customer
    fresh = {m["external_id"]: m for m in everything if m["external_id"] != "t-0"}
    assert {m["sla"]["policy"] for m in fresh.values()} == {"vip"}
    assert fresh["w-1"]["assignee"] == fresh["e-1"]["assignee"] == "john"  # the vip rule
    customer = await customer_of(client, "t-1")
    assert customer["segment"] == "vip" and customer["external_id"] == "CRM-1001"
    assert customer["lifetime_value"] == 48250.5


async def test_merge_split_and_undo_round_trip(client: Any) -> None:
    await push(client, [
        mention("t-1", "Kargom nerede?", handle="ali"),
        mention("w-1", "Siparişim gelmedi", channel="web", handle="form-1"),
    ])
    ali = (await customer_of(client, "t-1"))["id"]
    other = (await customer_of(client, "w-1"))["id"]
    merged = await client.post(f"/api/v1/customers/{ali}/merge", headers=AUTH,
                               json={"from": other, "by": "ayse"})
    body = await merged.json()
    assert merged.status == 200 and body["link"]["actor"] == "api:ayse"
    assert {m["channel"] for m in body["customer"]["history"]} == {"twitter", "web"}
    assert {m["customer_id"] for m in await listed(client)} == {ali}
    gone = await (await client.get(f"/api/v1/customers/{other}", headers=AUTH)).json()
    assert gone["merged_into"] == ali and gone["timeline"] == []

    undo = await client.post(f"/api/v1/customer-links/{body['link']['id']}/undo",
                             headers=AUTH)
    assert undo.status == 200
    assert {m["customer_id"] for m in await listed(client)} == {ali, other}
    again = await client.post(f"/api/v1/customer-links/{body['link']['id']}/undo",
                              headers=AUTH)
    assert again.status == 409  # already undone
    undo_of_undo = await client.post(
        f"/api/v1/customer-links/{(await undo.json())['link']['id']}/undo", headers=AUTH)
    assert undo_of_undo.status == 422  # as the API document says: merge again instead
    assert "merge or split again" in (await undo_of_undo.json())["error"]["message"]

    await client.post(f"/api/v1/customers/{ali}/merge", headers=AUTH, json={"from": other})
    merged_customer = await (await client.get(f"/api/v1/customers/{ali}", headers=AUTH)).json()
    web = next(i for i in merged_customer["identities"] if i["channel"] == "web")
    split = await client.post(f"/api/v1/customers/{ali}/split", headers=AUTH,
                              json={"identity": web["id"]})
    new = (await split.json())["customer"]
    assert split.status == 201 and [m["channel"] for m in new["history"]] == ["web"]
    assert (await customer_of(client, "w-1"))["id"] == new["id"]
    await client.post(f"/api/v1/customer-links/{(await split.json())['link']['id']}/undo",
                      headers=AUTH)
    assert (await customer_of(client, "w-1"))["id"] == ali


async def test_undoing_an_automatic_link_separates_the_account(client: Any,
                                                               services: Any) -> None:
    await push(client, [
        mention("w-1", channel="web", handle="form-1", email="ortak@example.com"),
        mention("e-1", channel="email", handle="ortak@example.com", email="ortak@example.com"),
    ])
    [link] = await links(services)
    response = await client.post(f"/api/v1/customer-links/{link.id}/undo", headers=AUTH)
    assert response.status == 200
    assert len({m["customer_id"] for m in await listed(client)}) == 2


async def test_notes_and_offers_join_the_timeline_newest_first(client: Any,
                                                               clock: Any) -> None:
    await push(client, [mention("t-1", "Kargom nerede?", handle="ali")])
    [item] = await listed(client)
    await client.post(f"/api/v1/mentions/{item['id']}/respond", headers=AUTH,
                      json={"note": "called back", "by": "ayse"})
    clock.advance(timedelta(minutes=5))
    customer = item["customer_id"]
    for kind, text in (("note", "Prefers Turkish"), ("offer", "Free shipping code")):
        response = await client.post(f"/api/v1/customers/{customer}/notes", headers=AUTH,
                                     json={"kind": kind, "text": text, "author": "ayse"})
        assert response.status == 201
    body = await (await client.get(f"/api/v1/customers/{customer}", headers=AUTH)).json()
    assert [t["type"] for t in body["timeline"]] == ["offer", "note", "response", "mention"]
    page = await (await client.get(f"/api/v1/customers/{customer}?limit=3",
                                   headers=AUTH)).json()
    rest = await (await client.get(f"/api/v1/customers/{customer}?limit=3&cursor="
                                   f"{page['next_cursor']}", headers=AUTH)).json()
    assert [t["type"] for t in rest["timeline"]] == ["mention"] and rest["next_cursor"] is None
    detail = await (await client.get(f"/api/v1/mentions/{item['id']}", headers=AUTH)).json()
    assert detail["customer"]["timeline"][0]["text"] == "Free shipping code"


async def test_search_finds_customers_by_any_identity(client: Any, services: Any) -> None:
    await import_customers(services, EXAMPLES / "customers.csv", progress=False)

    async def found(query: str) -> list[str]:
        response = await client.get("/api/v1/customers", params={"q": query}, headers=AUTH)
        return [c["external_id"] for c in (await response.json())["items"]]

    assert await found("Ali Veli") == ["CRM-1001"]
    assert await found("@aliveli") == ["CRM-1001"]
    assert await found("0532 111 22 33") == ["CRM-1001"]
    assert await found("DENIZ@example.com") == ["CRM-1002"]
    assert await found("CRM-1003") == ["CRM-1003"]
    response = await client.get("/api/v1/customers", params={"segment": "vip"}, headers=AUTH)
    assert [c["name"] for c in (await response.json())["items"]] == ["Ali Veli"]
