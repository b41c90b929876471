"""JSON errors for the API ({"error": {"code", "message"}}), plain pages elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("listener.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = {}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    is_api = request.path.startswith("/api/")
    if "\x00" in request.path:  # never a real name or id; PostgreSQL refuses it in text
        if is_api:
            return error_response(400, "bad_request", "the path contains a NUL character")
        raise web.HTTPBadRequest(text="the address contains a NUL character")
    try:
        return await handler(request)
    except APIError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if not is_api or exc.status < 400:
            raise
        kept = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(
            exc.status, HTTP_CODES.get(exc.status, "error"), exc.reason or "request failed", kept
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api:
            return error_response(500, "internal", "internal error; see the server log")
        raise
