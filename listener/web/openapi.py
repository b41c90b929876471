"""The OpenAPI 3.1 document for /api/v1, built from a compact table of the routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

routes = web.RouteTableDef()

MENTION_FILTERS = ("status", "channel", "source", "assignee", "sla_state", "q", "limit", "cursor")
ERROR = {"$ref": "#/components/schemas/Error"}

ENDPOINTS: tuple[tuple[str, str, str, tuple[str, ...], bool], ...] = (
    # path, method, summary, query params, has JSON body
    (
        "/api/v1/mentions",
        "get",
        "List mentions, newest first, cursor-paginated",
        MENTION_FILTERS,
        False,
    ),
    (
        "/api/v1/mentions/{id}",
        "get",
        "One mention with the customer's cross-channel history",
        (),
        False,
    ),
    ("/api/v1/mentions/{id}/assign", "post", 'Assign to an agent: {"agent": "ayse"}', (), True),
    (
        "/api/v1/mentions/{id}/respond",
        "post",
        'Mark responded (stops the clock): {"note": ...}',
        (),
        True,
    ),
    ("/api/v1/agents", "get", "Agents with their open load", (), False),
    ("/api/v1/customers/{id}", "get", "A customer, their accounts and history", (), False),
    ("/api/v1/sla/summary", "get", "Counts by SLA state and channel", (), False),
    (
        "/api/v1/webhooks/{source_id}",
        "post",
        "Push one mention or a list; X-Listener-Signature: sha256=<hmac hex>; no Bearer token",
        (),
        True,
    ),
)


def _operation(path: str, summary: str, params: tuple[str, ...], body: bool) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("id", "source_id")
        if "{" + name + "}" in path
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in params
    ]
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "200" if "webhooks" not in path else "202": {"description": "OK"},
            **{
                code: {"description": text, "content": {"application/json": {"schema": ERROR}}}
                for code, text in (
                    ("400", "Bad request"),
                    ("401", "Missing or bad credentials"),
                    ("404", "Not found"),
                    ("409", "Conflict"),
                    ("422", "Invalid body"),
                )
            },
        },
    }
    if body:
        operation["requestBody"] = {"content": {"application/json": {"schema": {}}}}
    if "webhooks" in path:
        operation["security"] = []
    return operation


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, method, summary, params, body in ENDPOINTS:
        paths.setdefault(path, {})[method] = _operation(path, summary, params, body)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Listener API", "version": "1"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            },
        },
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())
