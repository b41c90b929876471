"""`GET /api/v1/sources`: every configured source and how its polling is going."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from listener.models import SourceState
from listener.services import SERVICES, Services
from listener.store import queries as q
from listener.web.serialize import iso

routes = web.RouteTableDef()


def health(enabled: bool, polled: bool, state: SourceState | None) -> str:
    """ok | failing | auth_failed | rate_limited | never_polled | push | disabled."""
    if not enabled:
        return "disabled"
    if not polled:
        return "push"
    if state is None or (state.last_success_at is None and not state.consecutive_failures):
        return "never_polled"
    if not state.consecutive_failures:
        return "ok"
    return state.last_outcome if state.last_outcome in ("auth_failed", "rate_limited") \
        else "failing"


def source_json(svc: Services, config: Any, state: SourceState | None,
                now: datetime) -> dict[str, Any]:
    polled = svc.coordinator.sources.get(config.id)
    is_polled = polled is not None or (not config.enabled and hasattr(config, "interval"))
    body: dict[str, Any] = {
        "id": config.id,
        "kind": config.kind,
        "channel": config.channel,
        "enabled": config.enabled,
        "polled": is_polled,
        "health": health(config.enabled, is_polled, state),
        "interval_seconds": config.interval.total_seconds() if hasattr(config, "interval")
        else None,
        "last_success_at": iso(state.last_success_at) if state else None,
        "last_error": state.last_error if state else None,
        "last_error_at": iso(state.last_error_at) if state else None,
        "consecutive_failures": state.consecutive_failures if state else 0,
        "last_poll_items": state.last_items if state else None,
        "next_poll_at": iso(polled.next_poll_at) if polled else None,
        "read_budget": None,
    }
    if polled is not None:
        body.update(polled.status(now))
    return body


@routes.get("/api/v1/sources")
async def list_sources(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    now = svc.clock.now()
    async with svc.store.read() as session:
        states = {state.id: state for state in await q.source_states(session)}
    items = [source_json(svc, config, states.get(config.id), now)
             for config in svc.config.sources]
    return web.json_response({"items": items})
