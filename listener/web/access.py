"""Who may open which page: the signed-in user and the role each UI handler needs.

A handler says what it needs with `@requires("lead")` or `@public`; anything else under
the UI needs any signed-in user. The REST API (/api/) keeps its Bearer tokens and is not
governed by this module. `listener.web.session` enforces it in a middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

ROLES = ("agent", "lead", "admin")  # each role can do everything the ones before it can
OPEN_PATHS = ("/healthz", "/readyz", "/metrics", "/static/", "/login")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    agent_id: str | None  # the configured agent this login works as, if any
    lang: str | None  # "tr" | "en"; None = the browser's language

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


USER = web.RequestKey("listener.user", object)  # the signed-in User, or None


def requires(role: str) -> Callable[[F], F]:
    """Mark a UI handler as needing at least `role` (agent < lead < admin)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")

    def mark(handler: F) -> F:
        handler.required_role = role  # type: ignore[attr-defined]
        return handler

    return mark


def public(handler: F) -> F:
    """Mark a UI handler that anonymous visitors may open (the login page)."""
    handler.required_role = None  # type: ignore[attr-defined]
    return handler


def required_role(handler: Any) -> str | None:
    """The role a UI handler needs; unmarked handlers need any signed-in user."""
    return getattr(handler, "required_role", "agent")


def current_user(request: web.Request) -> User:
    """The signed-in user; the session middleware guarantees one on non-public pages."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPUnauthorized(text="sign in first")
    return user
