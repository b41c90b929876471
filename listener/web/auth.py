"""Bearer tokens for /api/v1. Webhooks carry their own HMAC and need none."""

from __future__ import annotations

from aiohttp import web

from listener.services import SERVICES
from listener.web.errors import Handler, error_response

OPEN_API_PATHS = ("/api/v1/webhooks/", "/api/v1/openapi.json")


@web.middleware
async def token_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/api/") and not path.startswith(OPEN_API_PATHS):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error_response(
                401, "unauthorized", "send Authorization: Bearer <token> (server.api_tokens)"
            )
        if not request.app[SERVICES].config.server.token_allowed(token.strip()):
            return error_response(401, "unauthorized", "this token is not one of server.api_tokens")
    return await handler(request)
