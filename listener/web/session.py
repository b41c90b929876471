"""Signed-in sessions for the dashboard: encrypted cookies, CSRF tokens, roles, headers.

The REST API under /api/ keeps its Bearer tokens (`listener.web.auth`); everything else
of the UI needs a signed-in user unless its handler is marked `@public`, and at least
the role its handler asks for. Every unsafe request must carry the session's CSRF token
(form field `csrf_token` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp_session import Session, get_session
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from connectors.webhook import same_secret
from listener.config import ServerConfig
from listener.services import SERVICES
from listener.store import users
from listener.web.access import OPEN_PATHS, USER, required_role
from listener.web.errors import Handler
from listener.web.pages import CSRF_TOKEN, render

log = logging.getLogger("listener.web")
COOKIE = "listener_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SESSIONLESS = tuple(p for p in OPEN_PATHS if p != "/login")  # probes, metrics, static files

SECURITY_HEADERS = {
    # No inline scripts or styles anywhere: pages load /static/*.js and *.css only.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def cookie_key(server: ServerConfig) -> bytes:
    """32 bytes for Fernet from `server.session_key` (any length ≥ 32), else random."""
    if server.session_key is None:
        log.warning("server.session_key is not set: sessions end when Listener restarts "
                    "(set it, e.g. session_key: ${LISTENER_SESSION_KEY})")
        return secrets.token_bytes(32)
    return hashlib.sha256(server.session_key.get_secret_value().encode()).digest()


def setup_access(app: web.Application, server: ServerConfig) -> None:
    """Order matters: the session middleware must run before `access_middleware`."""
    storage = EncryptedCookieStorage(
        cookie_key(server), cookie_name=COOKIE, httponly=True,
        samesite="Lax", secure=server.cookie_secure,
        max_age=int(server.session_max_age.total_seconds()))
    setup_sessions(app, storage)
    app.middlewares.append(access_middleware)
    app.on_response_prepare.append(security_headers)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path != "/static/" and not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


async def submitted_token(request: web.Request) -> str:
    header = request.headers.get("X-CSRF-Token")
    if header:
        return header
    if request.content_type in FORM_TYPES:
        value = (await request.post()).get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/api/") or path.startswith(SESSIONLESS):
        return await handler(request)
    if request.match_info.http_exception is not None:  # 404/405: nothing to protect
        return await handler(request)
    session = await get_session(request)
    request[CSRF_TOKEN] = csrf_token(session)
    request[USER] = await _signed_in(request, session)
    role = required_role(request.match_info.handler)
    if role is not None:
        user = request[USER]
        if user is None:
            return _sign_in_first(request)
        if not user.can(role):
            return render(request, "denied.html", status=403, role=role)
    if request.method not in SAFE_METHODS and not same_secret(
            request[CSRF_TOKEN], await submitted_token(request)):
        return render(request, "denied.html", status=403, role=None, csrf=True)
    if await _nul_in_form(request):  # never typed by a person; PostgreSQL refuses it in text
        raise web.HTTPBadRequest(text="the form contains a NUL character; remove it and "
                                      "send the form again")
    return await handler(request)


async def _nul_in_form(request: web.Request) -> bool:
    if request.method in SAFE_METHODS or request.content_type not in FORM_TYPES:
        return False
    posted = await request.post()
    return any(isinstance(value, str) and "\x00" in value for value in posted.values())


async def _signed_in(request: web.Request, session: Session) -> Any:
    user_id = session.get("uid")
    if not isinstance(user_id, int):
        return None
    svc = request.app[SERVICES]
    async with svc.store.read() as db:
        user = await users.load(db, user_id)
        if user is None or session.get("pw") != password_stamp(user.password_hash):
            session.invalidate()  # removed, disabled, or the password changed since
            return None
        return users.signed_in(user)


def password_stamp(password_hash: str) -> str:
    """Changes with the password, so a new password signs out every old session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _sign_in_first(request: web.Request) -> web.StreamResponse:
    if request.method in ("GET", "HEAD"):
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
    return render(request, "denied.html", status=401, role=None, anonymous=True)


def local_path(target: str | None) -> str:
    """Only redirect to our own pages after signing in (never //evil.example)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"
