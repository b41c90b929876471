"""Liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from listener import db
from listener.services import SERVICES

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    if not await store.ping():
        return web.json_response(
            {"status": "unavailable", "reason": "database unreachable"}, status=503
        )
    if not await db.at_head(store.engine):
        return web.json_response(
            {"status": "unavailable", "reason": "migrations pending: run `listener migrate`"},
            status=503,
        )
    return web.json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICES].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
