"""The pushed-mention format shared by webhooks, `listener ingest` and the replay source."""

from __future__ import annotations

import json

import pytest

from connectors.webhook import ItemError, WebhookConnector, parse_body, sign


def body(**overrides: object) -> dict[str, object]:
    return {"id": 42, "text": "kargo?", "created_at": "2026-11-23T09:00:00+03:00",
            "url": "https://acme.example/contact",
            "author": {"handle": "@Ali", "name": "Ali"}, **overrides}


def test_signature_must_be_the_hmac_of_the_exact_body() -> None:
    hook = WebhookConnector("site-form", "topsecret")
    raw = json.dumps(body()).encode()
    assert hook.verify(raw, sign("topsecret", raw))
    assert not hook.verify(raw + b" ", sign("topsecret", raw))
    assert not hook.verify(raw, sign("other", raw))
    assert not hook.verify(raw, None)
    assert "topsecret" not in repr(hook)


def test_defaults_and_numeric_ids() -> None:
    [item] = parse_body(json.dumps(body()).encode())
    assert item.external_id == "42" and item.channel == "web"
    assert item.created_at.utcoffset().total_seconds() == 3 * 3600


@pytest.mark.parametrize("bad,where", [
    (body(created_at="2026-11-23T09:00:00"), "created_at"),
    (body(author={"name": "no handle"}), "author.handle"),
    (body(text=None), "text"),
    ({"text": "no id"}, "id"),
])
def test_bad_objects_name_the_field(bad: dict[str, object], where: str) -> None:
    with pytest.raises(ItemError, match=where):
        parse_body(json.dumps([body(), bad]).encode())


def test_non_json_and_empty_lists_are_refused() -> None:
    for raw in (b"\xff\xfe", b"{", b"[]"):
        with pytest.raises(ItemError):
            parse_body(raw)
