"""Push ingest. A 202 is sent only after the whole batch is committed; a bad signature or
a bad object anywhere in the body stores nothing.

Besides `webhook` sources, a polled source whose connector `accepts_webhooks` (Instagram,
Facebook) takes Meta's deliveries here too: its own signature header, its own body
parser, and Meta's GET handshake."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.meta import WebhookBodyError
from connectors.webhook import SIGNATURE_HEADER, ItemError, parse_body
from listener.pipeline.ingest import SourceInfo
from listener.services import SERVICES
from listener.web.errors import APIError

routes = web.RouteTableDef()


@routes.post("/api/v1/webhooks/{source_id}")
async def push(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    source_id = request.match_info["source_id"]
    connector = receiver(svc, source_id)
    body = await request.read()
    header = getattr(connector, "signature_header", SIGNATURE_HEADER)
    if not connector.verify(body, request.headers.get(header)):
        raise APIError(
            401,
            "bad_signature",
            f"{header} must be sha256=<hex HMAC-SHA256 of the raw body "
            "keyed with the source secret>",
        )
    if callable(getattr(connector, "webhook_items", None)):
        return await platform_delivery(svc, source_id, connector, body)
    try:
        items = parse_body(body, connector.channel or "web")
    except ItemError as exc:
        raise APIError(422, "invalid", str(exc)) from None
    result = await svc.pipeline.ingest(SourceInfo(source_id, "webhook"), items)
    return web.json_response(
        {
            "accepted": len(items),
            "stored": len(result.stored),
            "duplicates": result.duplicates,
            "ids": result.stored,
        },
        status=202,
    )


def receiver(svc: Any, source_id: str) -> Any:
    """A webhook source, or a polled one that takes its platform's deliveries."""
    connector = svc.push_sources.get(source_id)
    if connector is None:
        polled = svc.connector_for(source_id)
        connector = polled if getattr(polled, "accepts_webhooks", False) else None
    if connector is None:
        raise APIError(404, "unknown_source", "no enabled webhook source has this id")
    return connector


async def platform_delivery(svc: Any, source_id: str, connector: Any,
                            body: bytes) -> web.Response:
    """A platform's own body (Meta's `entry[].changes[]`): items it cannot use are kept in
    rejected_items, so one odd change does not make the platform resend the rest."""
    try:
        items, rejected = await connector.webhook_items(body, svc.clock.now())
    except WebhookBodyError as exc:
        raise APIError(422, "invalid", str(exc)) from None
    result = await svc.pipeline.ingest(
        SourceInfo(source_id, connector.kind, connector.channel), items, rejected=rejected)
    return web.json_response(
        {"accepted": len(items), "stored": len(result.stored),
         "duplicates": result.duplicates, "ids": result.stored},
        status=202,
    )


@routes.get("/api/v1/webhooks/{source_id}")
async def handshake(request: web.Request) -> web.Response:
    """Meta's subscription check: echo `hub.challenge` only when the verify token matches."""
    connector = receiver(request.app[SERVICES], request.match_info["source_id"])
    query = request.query
    check = getattr(connector, "handshake", None)
    if not callable(check) or not check(query.get("hub.mode"), query.get("hub.verify_token")):
        raise APIError(403, "forbidden", "hub.mode must be subscribe and hub.verify_token "
                       "must match the source's verify_token")
    return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")
