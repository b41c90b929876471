"""One body limit for every route, checked from Content-Length before a handler runs.

aiohttp's `client_max_size` only bites when a handler reads the body, so a route that
never reads it would take any size, and the error would say little. This middleware
runs innermost: credentials are checked first (a stranger gets 401/403 without the body
being read), then an oversize body is a 413 naming the limit — JSON under /api/, a plain
page elsewhere. A chunked body without Content-Length still meets aiohttp's own limit.
"""

from __future__ import annotations

from aiohttp import web

from listener.web.errors import Handler, error_response

MAX_BODY_BYTES = 8 * 1024 * 1024
TOO_LARGE = f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB"


@web.middleware
async def body_limit_middleware(request: web.Request,
                                handler: Handler) -> web.StreamResponse:
    if (request.content_length or 0) <= MAX_BODY_BYTES:
        return await handler(request)
    if request.path.startswith("/api/"):
        return error_response(413, "too_large", f"{TOO_LARGE}; send less at a time")
    return web.Response(status=413, text=f"{TOO_LARGE}; send less at a time.")
