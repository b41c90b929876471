"""The web layer: thin handlers over the store and services."""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
JINJA = web.AppKey("jinja", jinja2.Environment)


def setup_web(app: web.Application) -> None:
    from listener.services import SERVICES
    from listener.web import (
        admin_users,
        alerts,
        api,
        customers,
        dashboard,
        health,
        login,
        mention_page,
        openapi,
        reports_api,
        reports_page,
        sources,
        team,
        templates_admin,
        webhooks,
    )
    from listener.web.auth import token_middleware
    from listener.web.body_limit import body_limit_middleware
    from listener.web.errors import WEB_OUTAGE, RefusalLog, error_middleware
    from listener.web.session import setup_access

    app[JINJA] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(("html",), default=True),
    )
    app[WEB_OUTAGE] = RefusalLog()
    app.middlewares.extend([error_middleware, token_middleware])
    setup_access(app, app[SERVICES].config.server)
    app.middlewares.append(body_limit_middleware)  # innermost: after the credential checks
    login.setup_throttle(app)
    for module in (api, customers, sources, alerts, webhooks, health, openapi, dashboard,
                   mention_page, login, admin_users, team, reports_page,
                   templates_admin, reports_api):
        app.add_routes(module.routes)
    app.router.add_static("/static/", STATIC_DIR, name="static")
