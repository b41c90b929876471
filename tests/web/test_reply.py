"""Reply drafts in the channel's tone and the customer's language; sending stops the clock."""

from __future__ import annotations

from typing import Any

import pytest

from listener.app import init_app
from tests.web.test_api import AUTH, listed, mention, push


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


async def reply(client: Any, mention_id: int, body: dict[str, Any]) -> Any:
    return await client.post(f"/api/v1/mentions/{mention_id}/reply", json=body, headers=AUTH)


async def test_drafts_follow_channel_tone_and_customer_language(client: Any) -> None:
    await push(client, [
        mention("w-1", "Faturam iki kez kesildi, iade istiyorum", channel="web",
                handle="form-1", name="Deniz Kaya"),
        mention("t-1", "My parcel is lost again, awful", channel="twitter", handle="jdoe",
                name="Jane Doe"),
    ])
    by_channel = {m["channel"]: m for m in await listed(client)}
    web_draft = await (await reply(client, by_channel["web"]["id"],
                                   {"template": "apology", "send": False})).json()
    assert web_draft["draft"].startswith("Sayın Deniz")
    assert "Saygılarımızla" in web_draft["draft"] and web_draft["sent"] is False
    social = await (await reply(client, by_channel["twitter"]["id"],
                                {"template": "apology"})).json()
    assert social["draft"].startswith("@jdoe") and "Jane" in social["draft"]
    assert len(social["draft"]) <= 280


async def test_customer_supplied_names_cannot_inject_markup(client: Any) -> None:
    await push(client, mention("w-1", "Where is my refund?", channel="email", handle="x",
                               name="<script>alert(1)</script>Eve"))
    [item] = await listed(client)
    draft = (await (await reply(client, item["id"], {"template": "info"})).json())["draft"]
    assert "<" not in draft and ">" not in draft
    assert draft.startswith("Dear scriptalert(1)/scriptEve")


async def test_unknown_template_and_unsendable_source_explain_what_to_do(client: Any) -> None:
    await push(client, mention("w-1", channel="web", handle="x"))
    [item] = await listed(client)
    unknown = await reply(client, item["id"], {"template": "nope"})
    assert unknown.status == 422
    assert "templates/tones/web/" in (await unknown.json())["error"]["message"]
    cannot = await reply(client, item["id"], {"text": "Merhaba", "send": True})
    assert cannot.status == 409
    assert "/respond" in (await cannot.json())["error"]["message"]
    empty = await reply(client, item["id"], {})
    assert empty.status == 422
