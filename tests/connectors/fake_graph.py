"""A fake Meta Graph API on 127.0.0.1 for the Instagram and Facebook sources: nodes and
edges in Graph's documented shapes (`data` + `paging.cursors`, errors as
`{"error": {"code", ...}}`), usage headers, and queued answers to simulate failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from connectors.webhook import sign

VERSION = "v21.0"
TOKEN = "meta-page-t0ken-s3cret"
APP_SECRET = "meta-app-s3cret"
VERIFY_TOKEN = "hub-verify-t0ken"
ACCOUNT_ID = "17841400000000000"
BRAND_USERNAME = "acme"
PAGE_ID = "100000000000000"
PUBLIC = "https://graph.facebook.com"  # what Graph puts in `paging.next`
EPOCH = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 09:00 in Istanbul, MONDAY_10 minus 1h


def at(minute: int) -> str:
    """Graph's time format: `2026-11-23T06:30:00+0000`."""
    return (EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S+0000")


def unix(minute: int) -> int:
    return int((EPOCH + timedelta(minutes=minute)).timestamp())


def graph_error(code: int, message: str = "", status: int = 400, subcode: int | None = None,
                headers: dict[str, str] | None = None) -> web.Response:
    error: dict[str, Any] = {"message": message or f"error {code}", "type": "OAuthException",
                             "code": code, "fbtrace_id": "AbCdEf"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.json_response({"error": error}, status=status, headers=headers)


def usage(percent: int, business: int | None = None, regain: int = 0) -> dict[str, str]:
    headers = {"X-App-Usage": json.dumps({"call_count": percent, "total_cputime": 1,
                                          "total_time": 1})}
    if business is not None:
        headers["X-Business-Use-Case-Usage"] = json.dumps({ACCOUNT_ID: [{
            "type": "instagram", "call_count": business, "total_cputime": 1, "total_time": 1,
            "estimated_time_to_regain_access": regain}]})
    return headers


def signed(body: Any, secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"X-Hub-Signature-256": sign(secret, raw),
                 "Content-Type": "application/json"}


class FakeGraph:
    """Nodes (`nodes[id]`: the fields a GET on the node returns) and edges
    (`edges[(id, edge)]`: rows, newest first, paged by `limit` and `after`)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {ACCOUNT_ID: {"id": ACCOUNT_ID,
                                                              "username": BRAND_USERNAME}}
        self.edges: dict[tuple[str, str], list[Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []
        self.answers: list[web.Response] = []  # for the next requests, whatever they are
        self.post_answers: list[web.Response] = []
        self.usage_headers: dict[str, str] = {}
        self.next_id = 18000000000000001

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get(f"/{VERSION}/{{node}}", self._node)
        app.router.add_get(f"/{VERSION}/{{node}}/{{edge}}", self._edge)
        app.router.add_post(f"/{VERSION}/{{node}}/{{edge}}", self._post)
        return app

    def calls(self, path_part: str, method: str = "GET") -> list[dict[str, Any]]:
        return [r for r in self.requests if path_part in r["path"] and r["method"] == method]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        form = dict(await request.post()) if request.method == "POST" else {}
        self.requests.append({"method": request.method, "path": request.path,
                              "query": dict(request.query), "headers": request.headers,
                              "form": form, "url": str(request.url)})
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            response: web.StreamResponse = graph_error(
                190, "Error validating access token: Session has expired", subcode=463)
        elif self.answers:
            response = self.answers.pop(0)
        else:
            response = await handler(request)
        for name, value in self.usage_headers.items():
            response.headers.setdefault(name, value)
        return response

    async def _node(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]
        fields = request.query.get("fields", "")
        if node == ACCOUNT_ID and fields.startswith("mentioned_comment.comment_id("):
            wanted = fields.removeprefix("mentioned_comment.comment_id(").split(")")[0]
            found = self.nodes.get(wanted)
            if found is None:
                return graph_error(100, "Unsupported get request")
            return web.json_response({"id": ACCOUNT_ID, "mentioned_comment": found})
        if node not in self.nodes:
            return graph_error(100, f"Object with ID '{node}' does not exist", subcode=33)
        known = self.nodes[node]
        return web.json_response({k: v for k, v in known.items()
                                  if k == "id" or k in fields.split(",")})

    async def _edge(self, request: web.Request) -> web.Response:
        key = (request.match_info["node"], request.match_info["edge"])
        if key not in self.edges:
            return graph_error(100, "Unsupported get request", subcode=33)
        rows = self.edges[key]
        limit = int(request.query.get("limit", 25))
        start = int(request.query.get("after", "0"))
        page = rows[start:start + limit]
        body: dict[str, Any] = {"data": page}
        if page:
            body["paging"] = {"cursors": {"before": str(start), "after": str(start + limit)}}
            if start + limit < len(rows):
                body["paging"]["next"] = (f"{PUBLIC}/{VERSION}/{key[0]}/{key[1]}"
                                          f"?limit={limit}&after={start + limit}")
        return web.json_response(body)

    async def _post(self, request: web.Request) -> web.Response:
        if self.post_answers:
            return self.post_answers.pop(0)
        form = dict(await request.post())
        made = str(self.next_id)
        self.next_id += 1
        self.posted.append({"node": request.match_info["node"],
                            "edge": request.match_info["edge"], "form": form, "id": made})
        return web.json_response({"id": made})
