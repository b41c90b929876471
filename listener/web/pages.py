"""Rendering a UI page: every template gets the user, the CSRF token, `_` and formats."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from listener.humanize import short_duration, time_left
from listener.services import SERVICES
from listener.web import JINJA
from listener.web.access import USER
from listener.web.i18n import Formats, pick_lang, translator

CSRF_TOKEN = web.RequestKey("listener.csrf", str)  # set by the session middleware


def page_lang(request: web.Request) -> str:
    user = request.get(USER)
    return pick_lang(user.lang if user else None, request.headers.get("Accept-Language"))


def render(request: web.Request, template: str, status: int = 200,
           **context: Any) -> web.Response:
    """Templates extend base.html and may use: user, csrf_token, lang, _ (translate),
    fmt (Babel dates/numbers in the configured time zone), time_left, short_duration."""
    svc = request.app[SERVICES]
    lang = page_lang(request)
    html = request.app[JINJA].get_template(template).render(
        user=request.get(USER), csrf_token=request.get(CSRF_TOKEN, ""), lang=lang,
        _=translator(lang), fmt=Formats(lang, svc.config.tz), time_left=time_left,
        short_duration=short_duration, timezone=svc.config.timezone, path=request.path,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html")
