"""The web layer: thin handlers over the store and services."""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

TEMPLATES_DIR = Path(__file__).parent / "templates"
JINJA = web.AppKey("jinja", jinja2.Environment)


def setup_web(app: web.Application) -> None:
    from listener.web import (
        alerts,
        api,
        customers,
        dashboard,
        health,
        openapi,
        sources,
        webhooks,
    )
    from listener.web.auth import token_middleware
    from listener.web.errors import error_middleware

    app[JINJA] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(("html",), default=True),
    )
    app.middlewares.extend([error_middleware, token_middleware])
    for module in (api, customers, sources, alerts, webhooks, health, openapi, dashboard):
        app.add_routes(module.routes)
