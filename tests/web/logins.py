"""Signing a test client in as a dashboard user, the way a browser does."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from listener.store import users

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def create_user(services: Any, name: str, role: str = "agent",
                      agent_id: str | None = None, password: str = PASSWORD) -> None:
    async with services.store.write() as session:
        await users.add_or_update(session, name, role, password, agent_id, datetime.now(UTC))


async def csrf_of(client: Any, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    response = await client.get(path)
    found = CSRF_FIELD.search(await response.text())
    assert found, f"no csrf_token on {path} ({response.status})"
    return found.group(1)


async def login_as(client: Any, services: Any, role: str = "agent",
                   agent_id: str | None = None, name: str | None = None) -> str:
    """Create the user and sign `client` in (its cookie jar keeps the session); returns the
    session's CSRF token for POSTs (form field csrf_token or header X-CSRF-Token)."""
    name = name or f"{role}-user"
    await create_user(services, name, role, agent_id)
    token = await csrf_of(client)
    response = await client.post("/login", data={"name": name, "password": PASSWORD,
                                                 "csrf_token": token}, allow_redirects=False)
    assert response.status == 303, await response.text()
    return await csrf_of(client, "/login")
