"""JSON errors for the API ({"error": {"code", "message"}}), plain pages elsewhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from listener.outage import database_unreachable, reason
from listener.web.health import RETRY_AFTER_SECONDS

log = logging.getLogger("listener.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
QUIET_SECONDS = 60.0


class RefusalLog:
    """Requests refused during an outage are logged once, not once each: a warning for
    the first refusal after `QUIET_SECONDS` without one (the background loops log when
    the database is back)."""

    def __init__(self) -> None:
        self.last = -QUIET_SECONDS

    def refused(self, request: web.Request, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self.last >= QUIET_SECONDS:
            log.warning("database unreachable: %s; answering 503 with Retry-After, first "
                        "on %s %s", reason(exc), request.method, request.path)
        self.last = now


WEB_OUTAGE = web.AppKey("web_outage", RefusalLog)  # one per app


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


def database_down(request: web.Request, is_api: bool, exc: Exception) -> web.Response:
    """503 with Retry-After, so a sender keeps the request and tries again (a resent
    webhook is stored once); one warning per outage instead of a traceback a request."""
    refusals = request.app.get(WEB_OUTAGE)
    if refusals is not None:
        refusals.refused(request, exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    message = "the database is unreachable; try again shortly"
    if is_api:
        return error_response(503, "unavailable", message, headers)
    return web.Response(status=503, text=message, headers=headers)


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
    except Exception as exc:
        if database_unreachable(exc):
            return database_down(request, is_api, exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api:
            return error_response(500, "internal", "internal error; see the server log")
        raise
