"""What a hostile client sends gets a clear 4xx, never a 500 — on SQLite and PostgreSQL.

PostgreSQL refuses NUL characters in text and integers past 64 bits where SQLite takes
them, so each of these once reached the database as a 500 there."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from listener.app import init_app
from tests.web.logins import login_as
from tests.web.test_api import AUTH, SECRET, mention, push

NESTED = "[" * 5000 + "]" * 5000


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


async def status_of(response: Any) -> int:
    body = await response.text()
    assert "Traceback" not in body
    return response.status


async def test_nul_characters_are_refused_or_searched_never_a_500(client: Any) -> None:
    bad = mention("n-1")
    bad["author"]["handle"] = "evil\x00handle"
    assert await status_of(await push(client, [bad])) in (202, 422)
    for query in ("channel=twitter%00x", "q=a%00b", "assignee=a%00b", "source=%00",
                  "status=new%00"):
        response = await client.get(f"/api/v1/mentions?{query}", headers=AUTH)
        assert await status_of(response) in (200, 400, 422), query
    response = await client.post("/api/v1/agents/a%00b/status", json={"status": "away"},
                                 headers=AUTH)
    assert await status_of(response) in (400, 404, 422)
    page = await client.get("/mentions/1%00", allow_redirects=False)
    assert await status_of(page) in (400, 404)
    response = await client.get("/api/v1/customers?q=a%00b", headers=AUTH)
    assert await status_of(response) in (200, 400, 422)


async def test_absurd_numbers_and_nesting_are_refused(client: Any) -> None:
    for path in ("/api/v1/mentions/99999999999999999999", "/api/v1/mentions/" + "9" * 5000,
                 "/api/v1/customers/9223372036854775808"):
        assert await status_of(await client.get(path, headers=AUTH)) in (400, 404, 422), path
    body = json.dumps([mention("h-1")]).replace('"name"', '"followers": ' + "9" * 5000 +
                                                ', "name"').encode()
    assert await status_of(await push_raw(client, body)) in (400, 413, 422)
    assert await status_of(await push_raw(client, NESTED.encode())) in (400, 413, 422)
    response = await client.post("/api/v1/mentions/1/assign", data=NESTED,
                                 headers={**AUTH, "Content-Type": "application/json"})
    assert await status_of(response) in (400, 404, 413, 422)


async def test_the_dashboard_takes_hostile_filters_calmly(client: Any, services: Any) -> None:
    await login_as(client, services, role="lead")
    for query in ("q=a%00b", "channel=%00", "page=99999999999999999999999", "segment=%00",
                  "assignee=%00"):
        assert await status_of(await client.get(f"/?{query}")) in (200, 400), query
    for path in ("/mentions/99999999999999999999", "/reports?from=%00&to=2026-01-01"):
        assert await status_of(await client.get(path)) in (400, 404), path


async def push_raw(client: Any, body: bytes) -> Any:
    from connectors.webhook import sign

    return await client.post("/api/v1/webhooks/site-form", data=body, headers={
        "X-Listener-Signature": sign(SECRET, body), "Content-Type": "application/json"})


async def test_an_undecodable_csrf_header_is_refused_not_a_500(client: Any,
                                                               services: Any) -> None:
    """aiohttp hands undecodable header bytes over as surrogates; comparing them with the
    session's token must still be a plain 403."""
    await login_as(client, services, "agent", agent_id="ayse")
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    cookie = "; ".join(f"{key}={morsel.value}" for key, morsel in cookies.items())
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /queue/status HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
                 b"Cookie: " + cookie.encode() + b"\r\nX-CSRF-Token: \xff\xfe\xfa\r\n"
                 b"Connection: close\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"403", status_line


BODY_FIELDS = {  # every string field of every JSON body the API takes, and a valid body
    "/api/v1/mentions/1/assign": ({"agent": "agent1"}, ("agent", "by")),
    "/api/v1/mentions/1/respond": ({}, ("note", "by")),
    "/api/v1/mentions/1/ignore": ({"reason": "spam"}, ("reason", "by")),
    "/api/v1/mentions/1/reply": ({"text": "Merhaba"}, ("text", "template", "by")),
    "/api/v1/agents/agent1/status": ({"status": "away"}, ("status", "by")),
    "/api/v1/customers/1/identities": ({"kind": "handle", "value": "ali", "channel": "x"},
                                       ("kind", "value", "channel", "by")),
    "/api/v1/customers/1/notes": ({"text": "called back"}, ("kind", "text", "author")),
    "/api/v1/customers/1/contacts": (
        {"phone": "0532 111 22 33", "summary": "asked about order"},
        ("phone", "started_at", "call_id", "duration", "agent", "topic", "summary",
         "outcome", "name", "by")),
    "/api/v1/customers/1/merge": ({"from": 1}, ("by",)),
    "/api/v1/customers/1/split": ({"identity": 1}, ("by",)),
}


@pytest.mark.parametrize("path", sorted(BODY_FIELDS))
async def test_a_nul_in_any_body_field_is_refused_never_a_500(client: Any, path: str) -> None:
    """PostgreSQL cannot store or even compare text with a NUL in it: whichever field
    carries one, the answer is a 4xx saying what is wrong (or, where the text is only
    shown back, it is taken), never a 500."""
    assert await status_of(await push(client, [mention("n-1")])) == 202
    valid, fields = BODY_FIELDS[path]
    for field in fields:
        for value in ("a\x00b", "\x00"):
            response = await client.post(path, json={**valid, field: value}, headers=AUTH)
            assert await status_of(response) < 500, (field, value)


async def test_a_nul_in_a_dashboard_form_is_refused_never_a_500(client: Any,
                                                                services: Any) -> None:
    """The dashboard's forms (assign, notes, sign-in) refuse a NUL with a 400 saying so,
    before anything reaches the database."""
    assert await status_of(await push(client, [mention("n-1")])) == 202
    token = await login_as(client, services, role="lead")
    for path, fields in (("/mentions/1/assign", {"agent": "a\x00b"}),
                         ("/mentions/1/note", {"kind": "note", "text": "ara\x00ma"}),
                         ("/login", {"name": "lead\x00-user", "password": "x"})):
        response = await client.post(path, data={**fields, "csrf_token": token},
                                      allow_redirects=False)
        assert await status_of(response) == 400, path
        assert "NUL" in await response.text()
    response = await client.post("/mentions/1/assign", data={"agent": "", "csrf_token": token},
                                 allow_redirects=False)
    assert response.status == 303  # the same form without the NUL still works
