"""Admins manage dashboard logins: add one, change a role or password, switch one off."""

from __future__ import annotations

from aiohttp import web

from listener.services import SERVICES
from listener.store import users
from listener.web.access import ROLES, current_user, requires
from listener.web.pages import render

routes = web.RouteTableDef()


async def _page(request: web.Request, error: str | None = None, done: str | None = None,
                status: int = 200, **fields: object) -> web.Response:
    svc = request.app[SERVICES]
    async with svc.store.read() as session:
        everyone = await users.all_users(session)
    return render(request, "admin_users.html", status=status, users=everyone, roles=ROLES,
                  agents=[a.id for a in svc.config.agents], error=error, done=done,
                  fields=fields)


@routes.get("/admin/users")
@requires("admin")
async def users_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/admin/users")
@requires("admin")
async def save_user(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    form = await request.post()
    name, role = str(form.get("name", "")), str(form.get("role", ""))
    agent = str(form.get("agent", "")) or None
    if agent is not None and agent not in {a.id for a in svc.config.agents}:
        return await _page(request, "Agent {agent} is not in the config.", status=422,
                           agent=agent)
    try:
        async with svc.store.write() as session:
            user, created = await users.add_or_update(
                session, name, role, str(form.get("password", "")), agent, svc.clock.now())
            saved = user.name
    except users.BadUser as exc:
        return await _page(request, "Cannot save {name}: {reason}", status=422, name=name,
                           reason=str(exc))
    return await _page(request, done="Created {name}." if created else "Updated {name}.",
                       name=saved)


@routes.post("/admin/users/{id:[0-9]{1,9}}/active")
@requires("admin")
async def switch_user(request: web.Request) -> web.Response:
    """Switching a login off ends its sessions at their next request."""
    svc = request.app[SERVICES]
    user_id = int(request.match_info["id"])
    active = (await request.post()).get("active") == "1"
    if user_id == current_user(request).id and not active:
        return await _page(request, "You cannot switch off your own login.", status=422)
    async with svc.store.write() as session:
        user = await users.get(session, user_id)
        if user is None:
            raise web.HTTPNotFound(text=f"user {user_id} does not exist")
        user.active = active
        name = user.name
    return await _page(request, done="{name} can sign in." if active else
                       "{name} can no longer sign in.", name=name)
