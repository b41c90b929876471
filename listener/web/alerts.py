"""`GET /api/v1/alerts`: recent alerts and how their delivery went. Shows the sink's
name, never its URL or secret; `last_error` is written by the sinks without either."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from listener.models import OutboxAlert
from listener.services import SERVICES
from listener.store import alerts as store
from listener.web.errors import APIError
from listener.web.serialize import iso
from responders.alerts.base import ALERT_KINDS

routes = web.RouteTableDef()
MAX_LIMIT = 500


def alert_json(row: OutboxAlert) -> dict[str, Any]:
    return {
        "id": row.id,
        "mention_id": row.mention_id,
        "sink": row.sink,
        "kind": row.kind,
        "created_at": iso(row.created_at),
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.state == "pending" else None,
        "sent_at": iso(row.sent_at),
        "delivered_in": row.delivered_in,
        "last_error": row.last_error,
    }


def choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise APIError(400, "bad_request", f"{name} must be one of {', '.join(allowed)}")
    return value


@routes.get("/api/v1/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    limit_text = request.query.get("limit", "50")
    if not (limit_text.isascii() and limit_text.isdigit()) or not (
            1 <= int(limit_text) <= MAX_LIMIT):
        raise APIError(400, "bad_request", f"limit must be a number from 1 to {MAX_LIMIT}")
    state = choice(request, "state", store.STATES)
    kind = choice(request, "kind", ALERT_KINDS)
    svc = request.app[SERVICES]
    async with svc.store.read() as session:
        rows = await store.recent(session, int(limit_text), state, kind)
    return web.json_response({"items": [alert_json(row) for row in rows]})
