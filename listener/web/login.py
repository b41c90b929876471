"""Signing in and out, with a pause after repeated failures, and the user's UI language."""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

from aiohttp import web
from aiohttp_session import get_session, new_session

from listener.services import SERVICES
from listener.store import users
from listener.web.access import current_user, public
from listener.web.i18n import LANGS
from listener.web.pages import CSRF_TOKEN, render
from listener.web.session import csrf_token, local_path, password_stamp

routes = web.RouteTableDef()
MAX_TRACKED = 10_000  # names and addresses remembered at once; oldest forgotten first


class LoginThrottle:
    """Failed sign-ins per user name and per client address within `window`; at `limit`
    failures either key waits until its oldest failure leaves the window."""

    def __init__(self, limit: int, window: timedelta):
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def wait(self, keys: list[str], now: datetime) -> timedelta | None:
        waits = []
        for key in keys:
            recent = self._recent(key, now)
            if len(recent) >= self.limit:
                waits.append(recent[0] + self.window - now)
        return max(waits) if waits else None

    def failed(self, keys: list[str], now: datetime) -> None:
        for key in keys:
            self._recent(key, now).append(now)
        while len(self._failures) > MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, name_key: str) -> None:
        self._failures.pop(name_key, None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent


THROTTLE = web.AppKey("login_throttle", LoginThrottle)


def setup_throttle(app: web.Application) -> None:
    server = app[SERVICES].config.server
    app[THROTTLE] = LoginThrottle(server.login_attempts, server.login_lockout)


@routes.get("/login")
@public
async def login_page(request: web.Request) -> web.Response:
    return await _login_form(request)


async def _login_form(request: web.Request, error: str | None = None, status: int = 200,
                      name: str = "", **error_fields: object) -> web.Response:
    svc = request.app[SERVICES]
    async with svc.store.read() as session:
        first_run = not await users.any_user(session)
    return render(request, "login.html", status=status, error=error, name=name,
                  next=local_path(request.query.get("next")), first_run=first_run,
                  error_fields=error_fields)


@routes.post("/login")
@public
async def login(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    form = await request.post()
    name = str(form.get("name", "")).strip()[:100]
    password = str(form.get("password", ""))[:1000]
    target = local_path(str(form.get("next", "")) or None)
    throttle = request.app[THROTTLE]
    now = svc.clock.now()
    keys = [f"name:{name.casefold()}", f"addr:{request.remote}"]
    wait = throttle.wait(keys, now)
    if wait is not None:
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        response = await _login_form(
            request, "Too many failed sign-ins. Try again in {minutes} min.", 429, name,
            minutes=minutes)
        response.headers["Retry-After"] = str(math.ceil(wait.total_seconds()))
        return response
    async with svc.store.write() as db:
        user = await users.authenticate(db, name, password)
        stamp = password_stamp(user.password_hash) if user else ""
    if user is None:
        throttle.failed(keys, now)
        return await _login_form(request, "Wrong user name or password.", 401, name)
    throttle.succeeded(keys[0])
    session = await new_session(request)  # a fresh session id: no fixation
    session["uid"], session["pw"] = user.id, stamp
    request[CSRF_TOKEN] = csrf_token(session)
    raise web.HTTPSeeOther(target)


@routes.post("/logout")
@public
async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


@routes.post("/me/lang")
async def set_language(request: web.Request) -> web.StreamResponse:
    """The UI language of the signed-in user: tr, en, or "" for the browser's choice."""
    svc = request.app[SERVICES]
    form = await request.post()
    lang = str(form.get("lang", ""))
    if lang and lang not in LANGS:
        raise web.HTTPBadRequest(text=f"lang must be one of {', '.join(LANGS)}")
    async with svc.store.write() as db:
        user = await users.load(db, current_user(request).id)
        if user is not None:
            user.lang = lang or None
    raise web.HTTPSeeOther(local_path(str(form.get("next", "")) or None))
