"""The queue page the team keeps open all day: most urgent first, time left in words.

The page renders once; after that `static/queue.js` keeps it current: it counts the time
left down every second and, when the live feed (`GET /events`) says mentions changed,
re-reads `GET /queue/rows` with the page's own query string and swaps the rows in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from listener.backlog import BACKLOG
from listener.humanize import short_duration
from listener.models import SourceState
from listener.pipeline.enrich import NEGATIVE, POSITIVE
from listener.services import SERVICES
from listener.store import queries as q
from listener.store.actions import NotFound
from listener.store.open_queue import QueueRow, agent_status, open_queue, queue_choices
from listener.store.routing import AGENT_STATUSES
from listener.web.access import current_user
from listener.web.i18n import translator
from listener.web.live_events import events_stream
from listener.web.pages import page_lang, render
from listener.web.queue_filters import PAGE_SIZE, QueueQuery, parse_queue_query
from listener.web.serialize import iso
from listener.web.session import local_path
from sla.policy import sla_state

routes = web.RouteTableDef()
routes.get("/events")(events_stream)  # the live feed exists for this page
Translate = Callable[..., str]
UNITS = ("{n}d", "{n}h", "{n}m", "{n}s")


@routes.get("/")
async def queue_page(request: web.Request) -> web.Response:
    user = current_user(request)
    svc = request.app[SERVICES]
    asked = parse_queue_query(request.query, user)
    view = await queue_view(request, asked)
    async with svc.store.read() as session:
        choices = {name: [(value, value) for value in values]
                   for name, values in (await queue_choices(session)).items()}
        sources = [source_health(state, view["now"]) for state in await q.source_states(session)]
        my_status = await agent_status(session, user.agent_id) if user.agent_id else None
    return render(request, "queue.html", status=400 if asked.problems else 200,
                  choices=choices, sources=sources, my_status=my_status, **view)


@routes.get("/queue/rows")
async def queue_rows(request: web.Request) -> web.Response:
    """The live part of the page alone, for the page's script to swap in."""
    asked = parse_queue_query(request.query, current_user(request))
    view = await queue_view(request, asked)
    return render(request, "queue_rows.html", status=400 if asked.problems else 200, **view)


@routes.post("/queue/status")
async def set_my_status(request: web.Request) -> web.StreamResponse:
    """The signed-in agent going away or coming back, exactly as the API's
    `POST /api/v1/agents/{id}/status` does: away hands their open work on."""
    user = current_user(request)
    svc = request.app[SERVICES]
    form = await request.post()
    status = str(form.get("status", ""))
    if not user.agent_id:
        raise web.HTTPBadRequest(text="your login is not linked to an agent")
    if status not in AGENT_STATUSES:
        raise web.HTTPBadRequest(text=f"status must be one of {', '.join(AGENT_STATUSES)}")
    try:
        await request.app[BACKLOG].set_status(user.agent_id, status, user.name,
                                              svc.clock.now())
    except NotFound as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    raise web.HTTPSeeOther(local_path(str(form.get("next", "")) or None))


async def queue_view(request: web.Request, asked: QueueQuery) -> dict[str, Any]:
    """What both the page and the rows fragment render."""
    svc = request.app[SERVICES]
    now = svc.clock.now()
    _ = translator(page_lang(request))
    async with svc.store.read() as session:
        summary = await q.sla_summary(session, now)
        if asked.problems:
            rows, total = [], 0
        else:
            found = await open_queue(session, asked.filter, now, asked.offset, PAGE_SIZE)
            rows, total = found.rows, found.total
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return {
        "now": now,
        "now_iso": iso(now),
        "rows": [row_view(row, now, _) for row in rows],
        "total": total,
        "summary": summary,
        "asked": asked,
        "filters": asked.values,
        "filtered": any(asked.values.values()),
        "page": asked.page,
        "pages": pages,
        "past_the_end": asked.page > pages,
        "prev_url": asked.url(page=asked.page - 1) if 1 < asked.page <= pages else None,
        "next_url": asked.url(page=asked.page + 1) if asked.page < pages else None,
        "first_url": asked.url(page=1),
        "fragment_url": asked.url("/queue/rows"),
        "units_json": json.dumps(dict(zip("dhms", (_(unit) for unit in UNITS), strict=True)),
                                 ensure_ascii=False),
    }


def row_view(row: QueueRow, now: datetime, _: Translate) -> dict[str, Any]:
    mention, author = row.mention, row.author
    state = sla_state(mention.deadline_at, mention.at_risk_at, mention.first_response_at, now)
    url = mention.url or ""
    return {
        "id": mention.id,
        "channel": mention.channel,
        "source": mention.source,
        "name": (author.name if author else "") or "",
        "handle": author.handle if author else "?",
        "reach": author.followers if author else None,
        "segment": row.segment,
        "text": mention.text,
        "rating": mention.rating,
        "url": url if url.startswith(("http://", "https://")) else None,
        "lang": mention.lang,
        "sentiment": sentiment_word(mention.sentiment),
        "sentiment_score": mention.sentiment,
        "priority": mention.priority,
        "assignee": mention.assignee,
        "state": state or "none",
        "deadline": mention.deadline_at,
        "deadline_iso": iso(mention.deadline_at),
        "at_risk_iso": iso(mention.at_risk_at),
        "countdown": countdown(mention.deadline_at, now, _),
        "posted": mention.created_at,
        "posted_ago": _("{t} ago", t=span(now - mention.created_at, _)),
    }


def sentiment_word(score: float) -> str:
    """The enricher's own thresholds, so "negative" here means what routing acted on."""
    if score <= NEGATIVE:
        return "negative"
    return "positive" if score >= POSITIVE else "neutral"


def span(delta: timedelta, _: Translate) -> str:
    """"1h 05m", "2d 3h", "12m", "45s": queue.js writes the same every second."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _("{n}d", n=days) + (" " + _("{n}h", n=hours) if hours else "")
    if hours:
        return _("{n}h", n=hours) + " " + _("{n}m", n=f"{minutes:02d}")
    if minutes:
        return _("{n}m", n=minutes)
    return _("{n}s", n=secs)


def countdown(deadline_at: datetime | None, now: datetime, _: Translate) -> str:
    if deadline_at is None:
        return _("no deadline")
    left = deadline_at - now
    if left > timedelta(0):
        return _("{t} left", t=span(left, _))
    return _("overdue by {t}", t=span(left, _))


def source_health(state: SourceState, now: datetime) -> dict[str, str]:
    """One line per polled source: is it delivering, and since when not."""
    if state.consecutive_failures:
        since = (
            f" (last success {short_duration(now - state.last_success_at)} ago)"
            if state.last_success_at
            else ""
        )
        return {
            "id": state.id,
            "status": "failing",
            "text": f"failing: {state.last_error or 'unknown error'}{since}",
        }
    if state.last_success_at is None:
        return {"id": state.id, "status": "waiting", "text": "not polled yet"}
    return {
        "id": state.id,
        "status": "ok",
        "text": f"ok {short_duration(now - state.last_success_at)} ago",
    }
