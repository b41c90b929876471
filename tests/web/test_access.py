"""Who gets in: sign-in, roles on every UI route, CSRF, throttling and security headers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from listener.app import init_app
from listener.web.access import OPEN_PATHS, ROLES, required_role
from tests.web.logins import PASSWORD, create_user, csrf_of, login_as

TOKEN_HEADERS = {"Authorization": "Bearer test-token"}


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


def sample_path(info: dict[str, Any]) -> str:
    """A concrete path the route's own pattern accepts, so the route itself answers."""
    if "path" in info:
        return info["path"]
    groups = dict(re.findall(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)",
                             info["pattern"].pattern))
    return re.sub(r"\{(\w+)\}", lambda m: next(
        v for v in ("1", "twitter", "en", "a") if re.fullmatch(groups[m.group(1)], v)),
        info["formatter"])


def ui_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, a concrete path, handler) for every route of the dashboard (not the API)."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if "prefix" in info or not ("path" in info or "formatter" in info):
            continue  # static files
        path = sample_path(info)
        if route.method == "HEAD" or path.startswith("/api/"):
            continue
        found.append((route.method, path, route.handler))
    return found


async def test_every_ui_route_refuses_anonymous_visitors_and_lower_roles(
        client: Any, services: Any) -> None:
    routes = ui_routes(client.app)
    assert len(routes) >= 5
    guarded = [(m, p, h) for m, p, h in routes
               if required_role(h) is not None and not p.startswith(OPEN_PATHS)]
    for method, path, _ in guarded:
        response = await client.request(method, path, allow_redirects=False)
        assert response.status in (303, 401), (method, path, response.status)
        if response.status == 303:
            assert response.headers["Location"].startswith("/login?next=")
    for role in ROLES[:-1]:
        token = await login_as(client, services, role=role, name=f"walker-{role}")
        above = [(m, p) for m, p, h in guarded
                 if required_role(h) is not None and ROLES.index(required_role(h)) >
                 ROLES.index(role)]
        for method, path in above:
            response = await client.request(method, path, allow_redirects=False,
                                            headers={"X-CSRF-Token": token})
            assert response.status == 403, (role, method, path, response.status)
        client.session.cookie_jar.clear()


async def test_probes_and_metrics_stay_open_and_the_api_keeps_its_tokens(
        client: Any, services: Any) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 200, path
        assert "Set-Cookie" not in response.headers
    await login_as(client, services, role="admin")
    # A dashboard session is not an API credential.
    assert (await client.get("/api/v1/mentions")).status == 401
    assert (await client.get("/api/v1/mentions", headers=TOKEN_HEADERS)).status == 200


async def test_sign_in_lands_on_the_page_asked_for_and_sign_out_ends_the_session(
        client: Any, services: Any) -> None:
    first = await client.get("/?channel=web", allow_redirects=False)
    assert first.status == 303
    assert URL(first.headers["Location"]).query["next"] == "/?channel=web"
    await create_user(services, "ayse", "agent", None)
    token = await csrf_of(client)
    response = await client.post("/login", data={"name": "ayse", "password": PASSWORD,
                                                 "csrf_token": token, "next": "/?channel=web"},
                                 allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/?channel=web"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = await client.get("/")
    assert page.status == 200 and "ayse" in await page.text()
    token = await csrf_of(client)
    assert (await client.post("/logout", allow_redirects=False)).status == 403  # no token
    out = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_only_local_pages_are_followed_after_signing_in(client: Any,
                                                              services: Any) -> None:
    await create_user(services, "can", "lead", None)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        token = await csrf_of(client)
        response = await client.post("/login", data={
            "name": "can", "password": PASSWORD, "csrf_token": token, "next": target},
            allow_redirects=False)
        assert response.headers["Location"] == "/", target
        client.session.cookie_jar.clear()


async def test_wrong_passwords_pause_further_attempts_even_with_the_right_one(
        client: Any, services: Any, clock: Any) -> None:
    await create_user(services, "deniz", "agent", None)
    for _ in range(services.config.server.login_attempts):
        token = await csrf_of(client)
        wrong = await client.post("/login", data={"name": "deniz", "password": "nope-nope",
                                                  "csrf_token": token})
        assert wrong.status == 401
        assert "Wrong user name or password." in await wrong.text()
    token = await csrf_of(client)
    paused = await client.post("/login", data={"name": "deniz", "password": PASSWORD,
                                               "csrf_token": token}, allow_redirects=False)
    assert paused.status == 429
    assert int(paused.headers["Retry-After"]) > 0
    assert "Try again in 15 min." in await paused.text()
    clock.advance(services.config.server.login_lockout + timedelta(seconds=1))
    token = await csrf_of(client)
    ok = await client.post("/login", data={"name": "deniz", "password": PASSWORD,
                                           "csrf_token": token}, allow_redirects=False)
    assert ok.status == 303


async def test_a_changed_password_signs_out_old_sessions(client: Any, services: Any) -> None:
    await login_as(client, services, role="agent", name="eda")
    assert (await client.get("/", allow_redirects=False)).status == 200
    await create_user(services, "eda", "agent", None, password="a brand new secret")
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_every_response_carries_the_security_headers(client: Any, services: Any) -> None:
    await login_as(client, services, role="lead")
    for path in ("/login", "/", "/healthz", "/metrics", "/static/app.css", "/nope",
                 "/api/v1/openapi.json"):
        response = await client.get(path)
        csp = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert response.headers.get("X-Frame-Options") == "DENY", path
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path
        assert response.headers.get("Referrer-Policy") == "same-origin", path


async def test_the_first_visitor_is_told_how_to_create_a_user(client: Any) -> None:
    page = await (await client.get("/login")).text()
    assert "listener users add --config FILE NAME --role admin" in page


async def test_the_ui_speaks_the_users_language(client: Any, services: Any) -> None:
    token = await login_as(client, services, role="lead", name="tr-user")
    turkish = await client.get("/login", headers={"Accept-Language": "tr-TR,tr;q=0.9"})
    assert "Giriş yap" in await turkish.text()
    await client.post("/me/lang", data={"lang": "tr", "csrf_token": token, "next": "/"})
    page = await (await client.get("/login", headers={"Accept-Language": "en"})).text()
    assert "Çıkış yap" in page and 'lang="tr"' in page


async def test_an_admin_adds_a_login_and_switches_one_off(client: Any, services: Any,
                                                          aiohttp_client: Any) -> None:
    token = await login_as(client, services, role="admin", name="boss")
    agent = services.config.agents[0].id
    added = await client.post("/admin/users", data={
        "csrf_token": token, "name": "newbie", "role": "agent", "agent": agent,
        "password": "newbie-secret"})
    assert added.status == 200 and "Created newbie." in await added.text()
    bad = await client.post("/admin/users", data={
        "csrf_token": token, "name": "x", "role": "agent", "password": "short"})
    assert bad.status == 422 and "at least 8 characters" in await bad.text()
    other = await aiohttp_client(client.app)
    token2 = await csrf_of(other)
    signed = await other.post("/login", data={"name": "newbie", "password": "newbie-secret",
                                              "csrf_token": token2}, allow_redirects=False)
    assert signed.status == 303
    assert (await other.get("/admin/users", allow_redirects=False)).status == 403
    page = await (await client.get("/admin/users")).text()
    ids = re.findall(r'data-name="newbie">.*?/admin/users/(\d+)/active', page, re.S)
    off = await client.post(f"/admin/users/{ids[0]}/active",
                            data={"csrf_token": token, "active": "0"})
    assert "newbie can no longer sign in." in await off.text()
    assert (await other.get("/", allow_redirects=False)).status == 303
