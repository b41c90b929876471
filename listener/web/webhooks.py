"""Push ingest. A 202 is sent only after the whole batch is committed; a bad signature or
a bad object anywhere in the body stores nothing."""

from __future__ import annotations

from aiohttp import web

from connectors.webhook import SIGNATURE_HEADER, ItemError, parse_body
from listener.pipeline.ingest import SourceInfo
from listener.services import SERVICES
from listener.web.errors import APIError

routes = web.RouteTableDef()


@routes.post("/api/v1/webhooks/{source_id}")
async def push(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    source_id = request.match_info["source_id"]
    connector = svc.push_sources.get(source_id)
    if connector is None:
        raise APIError(404, "unknown_source", "no enabled webhook source has this id")
    body = await request.read()
    if not connector.verify(body, request.headers.get(SIGNATURE_HEADER)):
        raise APIError(
            401,
            "bad_signature",
            f"{SIGNATURE_HEADER} must be sha256=<hex HMAC-SHA256 of the raw body "
            "keyed with the source secret>",
        )
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
