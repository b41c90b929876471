"""Every query and path parameter of every GET route in the API document, fed hostile
values on SQLite and PostgreSQL: a 200 or a clear 4xx, never a 500."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listener.app import init_app
from listener.web.openapi import document
from tests.hostile.strategies import FUZZ, hostile_text
from tests.web.test_api import AUTH, mention, push

GET_ROUTES = sorted(
    (path, [(p["name"], p["in"]) for p in op.get("parameters", [])])
    for path, ops in document()["paths"].items() for method, op in ops.items()
    if method == "get")
NUMBERISH = ["1", "0", "-1", "2147483648", "9223372036854775808", "9" * 400, "1e9", "1.5",
             "²", "٣", "0x10", " 1", "true", "[]", "2026-13-45", "2026-11-23T25:00"]


def encoded(value: str) -> str:
    """Percent-encoded byte for byte, so NUL and lone surrogates reach the server as sent."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def hostile_request(draw: st.DrawFn) -> str:
    path, params = draw(st.sampled_from(GET_ROUTES))
    value = st.one_of(hostile_text(), st.sampled_from(NUMBERISH))
    for name, where in params:
        if where == "path":
            path = path.replace("{" + name + "}", encoded(draw(value)) or "1")
    query = [f"{encoded(name)}={encoded(draw(value))}"
             for name, where in params if where == "query" and draw(st.booleans())]
    return path + ("?" + "&".join(query) if query else "")


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    client = await aiohttp_client(init_app(services, background=False))
    assert (await push(client, [mention("q-1"), mention("q-2", channel="web")])).status == 202
    return client


def test_every_get_route_of_the_document_is_fuzzed() -> None:
    assert len(GET_ROUTES) >= 10
    assert {"/api/v1/mentions", "/api/v1/sla/summary", "/api/v1/customers"} <= \
        {path for path, _ in GET_ROUTES}


@settings(FUZZ, max_examples=150)
@given(target=hostile_request())
async def test_hostile_parameters_never_make_a_500(client: Any, target: str) -> None:
    response = await client.get(target, headers=AUTH)
    body = await response.text()
    assert response.status < 500, (target[:300], body[:500])
    assert "Traceback" not in body
    too_long_for_aiohttp = len(target) > 8190  # its own plain-text 400, before any handler
    if response.status >= 400 and not too_long_for_aiohttp and \
            re.match(r"/api/v1/(?!webhooks)", target):
        assert response.content_type == "application/json", target[:300]
        assert (await response.json())["error"]["message"]
