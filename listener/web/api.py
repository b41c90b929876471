"""REST API v1 handlers: parse, call the store, render JSON."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from connectors.base import ReplyRefused
from listener.backlog import BACKLOG
from listener.models import STATUSES
from listener.services import SERVICES, Services
from listener.store import MentionFilter
from listener.store import queries as q
from listener.store.actions import (
    Conflict,
    Invalid,
    NotFound,
    assign,
    ignore,
    mark_responded,
)
from listener.store.customers import customer_detail
from listener.store.routing import AGENT_STATUSES
from listener.web.errors import APIError
from listener.web.mention_actions import TooLong, act, send_and_record
from listener.web.serialize import agent_json, customer_json, iso, mention_json
from responders.drafts import ALIASES, UnknownTemplate
from responders.platform import CannotSend

routes = web.RouteTableDef()
MAX_LIMIT = 500
MAX_ID = 2**31 - 1
MAX_MENTION_ID = 2**63 - 1  # mention ids are 64-bit (customers and the rest are not)
MAX_REASON = 1000  # an ignore reason is a sentence, not a document


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def int_param(request: web.Request, name: str, maximum: int = MAX_ID) -> int:
    value = request.match_info[name]
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(maximum)) \
            or int(value) > maximum:
        raise APIError(404, "not_found", f"{name} must be a number, got {value[:40]!r}")
    return int(value)


def actor(body: dict[str, Any]) -> str:
    """Who acted (`by`), recorded in the mention's history; `api` when not given."""
    by = body.get("by")
    if by is not None and (not isinstance(by, str) or len(by) > 100 or "\x00" in by):
        raise APIError(422, "invalid", "by must be a string of at most 100 characters, "
                                       "without NUL")
    return by or "api"


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json(loads=json.loads)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge numbers, deep nesting
        raise APIError(400, "bad_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise APIError(422, "invalid", "body must be a JSON object")
    return body


def parse_filter(request: web.Request) -> MentionFilter:
    query = request.query
    if any("\x00" in value for value in query.values()):
        raise APIError(400, "bad_request", "query parameters cannot contain NUL characters")
    try:
        limit_text = query.get("limit", "50")
        if not (limit_text.isascii() and limit_text.isdigit()):
            raise ValueError(limit_text)
        limit = int(limit_text)
    except ValueError:
        raise APIError(400, "bad_request", "limit must be a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise APIError(400, "bad_request", f"limit must be between 1 and {MAX_LIMIT}")
    status = query.get("status") or None
    if status and status not in STATUSES:
        raise APIError(400, "bad_request", f"status must be one of {', '.join(STATUSES)}")
    sla_state = query.get("sla_state") or None
    if sla_state and sla_state not in q.SLA_STATES:
        raise APIError(400, "bad_request", f"sla_state must be one of {', '.join(q.SLA_STATES)}")
    cursor = query.get("cursor") or None
    if cursor:
        try:
            q.decode_cursor(cursor)
        except (ValueError, UnicodeDecodeError):
            raise APIError(400, "bad_cursor", "cursor is not one this API returned") from None
    return MentionFilter(
        status=status,
        channel=query.get("channel") or None,
        source=query.get("source") or None,
        assignee=query.get("assignee") or None,
        sla_state=sla_state,
        q=query.get("q") or None,
        limit=limit,
        cursor=cursor,
    )


@routes.get("/api/v1/mentions")
async def list_mentions(request: web.Request) -> web.Response:
    svc = services(request)
    flt = parse_filter(request)
    now = svc.clock.now()
    async with svc.store.read() as session:
        page = await q.list_mentions(session, flt, now)
    return web.json_response(
        {"items": [mention_json(m, a, now) for m, a in page.rows], "next_cursor": page.next_cursor}
    )


@routes.get("/api/v1/mentions/{id}")
async def get_mention(request: web.Request) -> web.Response:
    svc = services(request)
    mention_id = int_param(request, "id", MAX_MENTION_ID)
    now = svc.clock.now()
    async with svc.store.read() as session:
        row = await q.get_mention(session, mention_id)
        if row is None:
            raise APIError(404, "not_found", f"mention {mention_id} does not exist")
        body = mention_json(*row, now)
        customer = (await customer_detail(session, row[0].customer_id)
                    if row[0].customer_id else None)
        events = await q.events_for(session, mention_id)
    body["customer"] = customer_json(customer, now) if customer else None
    body["events"] = [
        {"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor, "data": e.data} for e in events
    ]
    return web.json_response(body)


async def _act(request: web.Request, action: Any, **kwargs: Any) -> web.Response:
    """Run one agent action in a transaction and answer with the updated mention."""
    mention_id = int_param(request, "id", MAX_MENTION_ID)
    with store_errors():
        row = await act(request, mention_id, action, **kwargs)
    return web.json_response(mention_json(*row, services(request).clock.now()))


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """The store's typed errors as the API's error answers."""
    try:
        yield
    except NotFound as exc:
        raise APIError(404, "not_found", str(exc)) from None
    except Invalid as exc:
        raise APIError(422, "invalid", str(exc)) from None
    except Conflict as exc:
        raise APIError(409, "conflict", str(exc)) from None


@routes.post("/api/v1/mentions/{id}/assign")
async def assign_mention(request: web.Request) -> web.Response:
    body = await json_body(request)
    if "agent" not in body or not (body["agent"] is None or isinstance(body["agent"], str)):
        raise APIError(422, "invalid", 'send {"agent": "<agent id>"} (or null to unassign)')
    return await _act(request, assign, agent_id=body["agent"], actor=actor(body))


@routes.post("/api/v1/mentions/{id}/respond")
async def respond_mention(request: web.Request) -> web.Response:
    body = await json_body(request)
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise APIError(422, "invalid", "note must be a string")
    return await _act(request, mark_responded, actor=actor(body), note=note)


@routes.post("/api/v1/mentions/{id}/ignore")
async def ignore_mention(request: web.Request) -> web.Response:
    """Not worth an answer: out of the queue, no deadline alerts, the reason kept."""
    body = await json_body(request)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise APIError(422, "invalid", 'send {"reason": "<why>"}: a non-empty string of at '
                                       f"most {MAX_REASON} characters")
    return await _act(request, ignore, reason=reason, actor=actor(body))


@routes.post("/api/v1/mentions/{id}/reply")
async def reply_mention(request: web.Request) -> web.Response:
    """Draft from a tone template (or take the agent's text) and, with send, post it
    through the source's connector; a sent reply is the first response."""
    svc = services(request)
    mention_id = int_param(request, "id", MAX_MENTION_ID)
    body = await json_body(request)
    by = actor(body)
    text, template, send = body.get("text"), body.get("template"), body.get("send", False)
    if not isinstance(send, bool) or any(
        v is not None and not isinstance(v, str) for v in (text, template)
    ):
        raise APIError(422, "invalid", 'send {"text": str, "template": str, "send": bool}')
    if not text and not template:
        raise APIError(422, "invalid", "give the reply text, or a template to draft from")
    async with svc.store.read() as session:
        row = await q.get_mention(session, mention_id)
        if row is not None and not text:
            try:
                text = (await svc.composer.compose(session, mention_id, template)).text
            except UnknownTemplate as exc:
                raise APIError(422, "unknown_template", str(exc)) from None
    if row is None:
        raise APIError(404, "not_found", f"mention {mention_id} does not exist")
    if not send:
        return web.json_response({"draft": text, "sent": False})
    try:
        with store_errors():
            sent, updated = await send_and_record(request, row, text, by)
    except TooLong as exc:
        raise APIError(422, "too_long", f"{exc}; shorten it (nothing was sent)") from None
    except CannotSend as exc:
        raise APIError(409, "cannot_send",
                       f"{exc}; or answer on the platform, then "
                       f"POST /api/v1/mentions/{mention_id}/respond") from None
    except ReplyRefused as exc:
        raise platform_refusal(exc) from None
    return web.json_response({"draft": text, "sent": True,
                              "reply": {"id": sent.external_id, "url": sent.url},
                              "mention": mention_json(*updated, svc.clock.now())})


@routes.get("/api/v1/mentions/{id}/draft")
async def draft_reply(request: web.Request) -> web.Response:
    """A reply drafted from the intent's tone template, with its length and the
    channel's limit; nothing is stored or sent."""
    svc = services(request)
    mention_id = int_param(request, "id", MAX_MENTION_ID)
    intent, lang = request.query.get("intent"), request.query.get("lang")
    if not intent:
        raise APIError(400, "bad_request", "give ?intent=, one of GET /api/v1/templates")
    if lang is not None and lang not in svc.composer.languages():
        raise APIError(400, "bad_request",
                       f"lang must be one of {', '.join(svc.composer.languages())}")
    async with svc.store.read() as session:
        try:
            draft = await svc.composer.compose(session, mention_id, intent, lang)
        except UnknownTemplate as exc:
            raise APIError(400, "unknown_template", str(exc)) from None
    if draft is None:
        raise APIError(404, "not_found", f"mention {mention_id} does not exist")
    return web.json_response(draft.as_json())


@routes.get("/api/v1/templates")
async def list_templates(request: web.Request) -> web.Response:
    """What a composer can offer: intents, languages and each channel's length limit."""
    composer = services(request).composer
    return web.json_response({"intents": list(composer.intents()), "aliases": ALIASES,
                              "languages": list(composer.languages()),
                              "limits": composer.limits})


def platform_refusal(exc: ReplyRefused) -> APIError:
    """The platform's own 422/429 pass through; auth and server failures are a 502, so a
    client never mistakes the platform's 401 for its own bad token."""
    status = exc.status if exc.status in (422, 429) else 502
    error = APIError(status, "platform_refused", exc.message)
    if exc.retry_after is not None:
        error.headers = {"Retry-After": str(int(exc.retry_after + 0.999))}
    return error


@routes.get("/api/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    async with services(request).store.read() as session:
        agents = await q.list_agents(session)
    return web.json_response({"items": [agent_json(a, n) for a, n in agents]})


@routes.post("/api/v1/agents/{agent_id}/status")
async def set_agent_status(request: web.Request) -> web.Response:
    """Away takes the agent out of routing (and, with `routing.handoff: reassign`, hands
    their open mentions on); available brings them back and drains the backlog."""
    svc = services(request)
    body = await json_body(request)
    status = body.get("status")
    if status not in AGENT_STATUSES:
        raise APIError(422, "invalid", 'send {"status": "available" | "away"}')
    agent_id = request.match_info["agent_id"]
    try:
        agent = await request.app[BACKLOG].set_status(agent_id, status, actor(body),
                                                      svc.clock.now())
    except NotFound as exc:
        raise APIError(404, "not_found", str(exc)) from None
    async with svc.store.read() as session:
        load = (await q.open_counts(session)).get(agent.id, 0)
    return web.json_response(agent_json(agent, load))


@routes.get("/api/v1/sla/summary")
async def sla_summary(request: web.Request) -> web.Response:
    svc = services(request)
    now = svc.clock.now()
    async with svc.store.read() as session:
        summary = await q.sla_summary(session, now)
    return web.json_response({"now": iso(now), **summary})
