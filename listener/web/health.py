"""Liveness, readiness and the Prometheus scrape; and how long a caller is asked to wait
while the database is down (a 503 the caller retries, never a 500)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from listener import db
from listener.services import SERVICES

routes = web.RouteTableDef()
# How long a caller is asked to wait while the database is unreachable: a restart or a
# fail-over usually takes seconds, and webhook senders retry on 503 with this hint.
RETRY_AFTER_SECONDS = 5


def unavailable(reason: str) -> web.Response:
    return web.json_response({"status": "unavailable", "reason": reason}, status=503,
                             headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    if not await store.ping():
        return unavailable("database unreachable")
    if not await db.at_head(store.engine):
        return unavailable("migrations pending: run `listener migrate`")
    return web.json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICES].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
