"""Every route that takes a body refuses one over the limit with 413, walked from the
router's own table so a route added later is covered too.

Credentials come first: a stranger gets 401 (or 403) before a byte of the body is read,
since reading megabytes for someone who may not send anything is the cost the limit is
there to avoid. The webhook has no credential but the signature over the body, so it
answers 413 to anyone; so does the sign-in form, whose CSRF token is in the body it
has to read (aiohttp's own limit then answers, naming the size in bytes).
"""

from __future__ import annotations

from typing import Any

import pytest

from listener.app import init_app
from listener.web.access import required_role
from listener.web.body_limit import MAX_BODY_BYTES
from tests.web.logins import login_as
from tests.web.test_access import TOKEN_HEADERS, sample_path

OVERSIZE = b"x" * (MAX_BODY_BYTES + 1)
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
OPEN_FOR_BODIES = ("/api/v1/webhooks/", "/login")
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def db_url(tmp_path: Any) -> str:
    """The limit is the web layer's, the same on either database: SQLite alone."""
    return f"sqlite+aiosqlite:///{tmp_path}/listener.db"


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


def body_routes(client: Any) -> list[tuple[str, str, Any]]:
    found = []
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method in BODY_METHODS and ("path" in info or "formatter" in info):
            found.append((route.method, sample_path(info), route.handler))
    return found


async def test_every_route_refuses_an_oversize_body_after_checking_credentials(
        client: Any, services: Any) -> None:
    routes = body_routes(client)
    assert len(routes) >= 20
    token = await login_as(client, services, role="admin", name="big-sender")
    for method, path, _ in routes:
        headers = (TOKEN_HEADERS if path.startswith("/api/") else {"X-CSRF-Token": token})
        response = await client.request(method, path, data=OVERSIZE, allow_redirects=False,
                                        headers={**headers, "Content-Type": "text/plain"})
        assert response.status == 413, (method, path, response.status)
        if path.startswith("/api/"):
            error = (await response.json())["error"]
            assert error["code"] == "too_large" and "8 MiB" in error["message"], path
        else:
            assert "larger than 8 MiB" in await response.text(), path
    client.session.cookie_jar.clear()
    for method, path, handler in routes:
        response = await client.request(method, path, data=OVERSIZE, allow_redirects=False,
                                        headers={"Content-Type": FORM})
        if path.startswith(OPEN_FOR_BODIES) or required_role(handler) is None:
            assert response.status == 413, (method, path, response.status)
            assert str(MAX_BODY_BYTES) in await response.text() or path.startswith("/api/")
        else:
            assert response.status in (401, 403), (method, path, response.status)


async def test_a_body_within_the_limit_still_reaches_the_handler(client: Any) -> None:
    response = await client.post("/api/v1/mentions/1/assign", json={"agent": "ayse"},
                                 headers=TOKEN_HEADERS)
    assert response.status == 404  # read and answered: there is no mention 1 yet
