"""/api/v1/customers: search, identities, merge, split, undo, notes, calls and the
timeline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from listener.calls import CallError, record_call, to_call
from listener.identities import KINDS, BadIdentity, normalise
from listener.models import CustomerContact
from listener.store import customers as c
from listener.store.actions import Conflict, Invalid, NotFound
from listener.store.queries import decode_cursor
from listener.web.api import MAX_ID, MAX_LIMIT, int_param, json_body, services
from listener.web.errors import APIError
from listener.web.serialize import (
    customer_json,
    customer_summary_json,
    iso,
    link_json,
    note_json,
)

routes = web.RouteTableDef()


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", "50")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise APIError(400, "bad_request", f"limit must be a number from 1 to {MAX_LIMIT}")
    return int(text)


def _text(body: dict[str, Any], key: str, limit: int, required: bool = True) -> str | None:
    """An optional field left blank counts as not given, as `by` does on mentions."""
    value = body.get(key)
    if not required and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise APIError(422, "invalid", f"{key} must be a non-empty string of at most "
                                       f"{limit} characters, without NUL")
    return value


def _actor(body: dict[str, Any]) -> str:
    """`api:<by>` in the audit: who linked, merged or split by hand."""
    by = _text(body, "by", 100, required=False)
    return f"api:{by}" if by else "api"


def _body_id(body: dict[str, Any], key: str, what: str) -> int:
    """A row id in a JSON body, in the same range as ids in paths."""
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise APIError(422, "invalid", f'send {{"{key}": <id of {what}>}}')
    return value


async def _write(request: web.Request,
                 work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    try:
        async with services(request).store.write() as session:
            return await work(session)
    except NotFound as exc:
        raise APIError(404, "not_found", str(exc)) from None
    except Invalid as exc:
        raise APIError(422, "invalid", str(exc)) from None
    except Conflict as exc:
        raise APIError(409, "conflict", str(exc)) from None


@routes.get("/api/v1/customers")
async def list_customers(request: web.Request) -> web.Response:
    svc = services(request)
    query = request.query
    if any("\x00" in value for value in query.values()):
        raise APIError(400, "bad_request", "query parameters cannot contain NUL characters")
    limit = _limit(request)
    cursor = query.get("cursor") or None
    if cursor:
        try:
            decode_cursor(cursor)
        except (ValueError, UnicodeDecodeError):
            raise APIError(400, "bad_cursor", "cursor is not one this API returned") from None
    async with svc.store.read() as session:
        page = await c.search(session, query.get("q") or None, query.get("segment") or None,
                              limit, cursor, svc.config.customers.default_region)
    return web.json_response({"items": [customer_summary_json(x) for x in page.rows],
                              "next_cursor": page.next_cursor})


@routes.get("/api/v1/customers/{id}")
async def get_customer(request: web.Request) -> web.Response:
    svc = services(request)
    customer_id = int_param(request, "id")
    limit = _limit(request)
    cursor = request.query.get("cursor") or None
    if cursor:
        try:
            c.decode_timeline_cursor(cursor)
        except ValueError:
            raise APIError(400, "bad_cursor", "cursor is not one this API returned") from None
    async with svc.store.read() as session:
        found = await c.customer_detail(session, customer_id, limit, cursor)
    if found is None:
        raise APIError(404, "not_found", f"customer {customer_id} does not exist")
    return web.json_response(customer_json(found, svc.clock.now()))


@routes.post("/api/v1/customers/{id}/identities")
async def add_identity(request: web.Request) -> web.Response:
    svc = services(request)
    customer_id = int_param(request, "id")
    body = await json_body(request)
    kind = body.get("kind")
    if kind not in KINDS:
        raise APIError(422, "invalid", f"kind must be one of {', '.join(KINDS)}")
    value = _text(body, "value", 320)
    channel = _text(body, "channel", 30, required=False)
    try:
        identity = normalise(kind, value or "", channel, svc.config.customers.default_region)
    except BadIdentity as exc:
        raise APIError(422, "invalid", str(exc)) from None
    actor = _actor(body)
    now = svc.clock.now()
    link = await _write(request, lambda s: c.add_identity(s, customer_id, identity, actor, now))
    return await _answer(request, customer_id, link)


async def _answer(request: web.Request, customer_id: int, link: Any,
                  status: int = 200) -> web.Response:
    """The customer as it is now, and the audit record the change made (undo it with
    POST /api/v1/customer-links/{id}/undo)."""
    svc = services(request)
    async with svc.store.read() as session:
        found = await c.customer_detail(session, customer_id)
    assert found is not None
    return web.json_response({"customer": customer_json(found, svc.clock.now()),
                              "link": link_json(link) if link is not None else None},
                             status=status)


@routes.post("/api/v1/customers/{id}/merge")
async def merge_customers(request: web.Request) -> web.Response:
    svc = services(request)
    customer_id = int_param(request, "id")
    body = await json_body(request)
    other = _body_id(body, "from", "the customer to merge in")
    actor, now = _actor(body), svc.clock.now()
    link = await _write(request, lambda s: c.merge(s, customer_id, other, actor, now))
    return await _answer(request, customer_id, link)


@routes.post("/api/v1/customers/{id}/split")
async def split_customer(request: web.Request) -> web.Response:
    svc = services(request)
    customer_id = int_param(request, "id")
    body = await json_body(request)
    ident = _body_id(body, "identity", "the identity to split off")
    actor, now = _actor(body), svc.clock.now()
    link = await _write(request, lambda s: c.split(s, customer_id, ident, actor, now))
    return await _answer(request, link.customer_id, link, 201)


@routes.post("/api/v1/customer-links/{id}/undo")
async def undo_link(request: web.Request) -> web.Response:
    svc = services(request)
    link_id = int_param(request, "id")
    body = await json_body(request)
    actor, now = _actor(body), svc.clock.now()
    record = await _write(request, lambda s: c.undo(s, link_id, actor, now))
    return await _answer(request, record.customer_id, record)


@routes.post("/api/v1/customers/{id}/notes")
async def add_note(request: web.Request) -> web.Response:
    svc = services(request)
    customer_id = int_param(request, "id")
    body = await json_body(request)
    kind = body.get("kind", "note")
    if kind not in c.NOTE_KINDS:
        raise APIError(422, "invalid", f"kind must be one of {', '.join(c.NOTE_KINDS)}")
    text = _text(body, "text", 10_000)
    author = _text(body, "author", 100, required=False)
    now = svc.clock.now()
    note = await _write(request, lambda s: c.add_note(s, customer_id, kind, text or "",
                                                      author, now))
    return web.json_response(note_json(note), status=201)


@routes.post("/api/v1/customers/{id}/contacts")
async def add_contact(request: web.Request) -> web.Response:
    """One call-centre call for this customer: `201` with the call, `200` when the same
    call (by `call_id`, else phone and time) was recorded before."""
    svc = services(request)
    customer_id = int_param(request, "id")
    body = await json_body(request)
    zone = ZoneInfo(svc.config.timezone)
    try:
        call = to_call(body, svc.config.customers.default_region, zone, svc.clock.now())
    except CallError as exc:
        raise APIError(422, "invalid", str(exc)) from None
    if call.callback and not call.phone:
        raise APIError(422, "invalid", f"phone is required when the outcome "
                                       f"({call.outcome}) promises a callback: it is the "
                                       "number to call back")
    try:
        recorded = await record_call(svc, call, customer_id=customer_id,
                                     actor=_actor(body))
    except NotFound as exc:
        raise APIError(404, "not_found", str(exc)) from None
    except Conflict as exc:
        raise APIError(409, "conflict", str(exc)) from None
    return web.json_response(contact_json(recorded.contact),
                             status=201 if recorded.created else 200)


def contact_json(contact: CustomerContact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "customer_id": contact.customer_id,
        "call_id": contact.external_id,
        "phone": contact.phone,
        "started_at": iso(contact.started_at),
        "duration_seconds": contact.duration_seconds,
        "agent": contact.agent,
        "topic": contact.topic,
        "summary": contact.summary,
        "outcome": contact.outcome,
        "callback_mention_id": contact.mention_id,
        "recorded_at": iso(contact.recorded_at),
    }
