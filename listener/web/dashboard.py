"""The queue page the team keeps open all day: most urgent first, time left in words."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from listener.humanize import short_duration, time_left
from listener.models import SourceState
from listener.services import SERVICES
from listener.store import queries as q
from listener.web import JINJA
from listener.web.serialize import author_json
from sla.policy import sla_state

routes = web.RouteTableDef()
REFRESH_SECONDS = 10


@routes.get("/")
async def queue_page(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    now = svc.clock.now()
    filters = {key: request.query.get(key) for key in ("assignee", "channel", "state")}
    async with svc.store.read() as session:
        rows = await q.queue(
            session,
            now,
            assignee=filters["assignee"],
            channel=filters["channel"] or None,
            sla_state=filters["state"] or None,
        )
        summary = await q.sla_summary(session, now)
        agents = [agent.id for agent, _ in await q.list_agents(session)]
        sources = [source_health(state, now) for state in await q.source_states(session)]
    tz = svc.config.tz
    mentions = []
    for mention, author in rows:
        state = sla_state(mention.deadline_at, mention.at_risk_at, mention.first_response_at, now)
        mentions.append(
            {
                "id": mention.id,
                "channel": mention.channel,
                "source": mention.source,
                "author": author_json(author) or {"handle": "?", "name": ""},
                "text": mention.text,
                "url": mention.url
                if (mention.url or "").startswith(("http://", "https://"))
                else None,
                "assignee": mention.assignee,
                "priority": mention.priority,
                "lang": mention.lang,
                "state": state or "none",
                "time_left": time_left(mention.deadline_at, now),
                "posted": f"{short_duration(now - mention.created_at)} ago",
                "posted_at": mention.created_at.astimezone(tz).strftime("%a %H:%M"),
            }
        )
    html = (
        request.app[JINJA]
        .get_template("queue.html")
        .render(
            mentions=mentions,
            agents=agents,
            filters=filters,
            sources=sources,
            filtered=any(value is not None for value in filters.values()),
            summary=summary,
            refresh=REFRESH_SECONDS,
            timezone=svc.config.timezone,
        )
    )
    return web.Response(text=html, content_type="text/html")


@routes.get("/mentions/{id:[0-9]{1,10}}")
async def mention_page(request: web.Request) -> web.Response:
    """Where alert links land: the mention, how long is left, and what happened to it."""
    svc = request.app[SERVICES]
    now = svc.clock.now()
    mention_id = int(request.match_info["id"])
    async with svc.store.read() as session:
        row = await q.get_mention(session, mention_id)
        if row is None:
            raise web.HTTPNotFound(text=f"mention {mention_id} does not exist")
        events = await q.events_for(session, mention_id)
    mention, author = row
    state = sla_state(mention.deadline_at, mention.at_risk_at, mention.first_response_at, now)
    page = {
        "id": mention.id, "text": mention.text, "channel": mention.channel,
        "source": mention.source, "assignee": mention.assignee, "policy": mention.sla_policy,
        "author_handle": author.handle if author else "?",
        "author_name": (author.name if author else "") or "",
        "url": mention.url if (mention.url or "").startswith(("http://", "https://")) else None,
        "state": state or "none", "state_text": (state or "no deadline").replace("_", " "),
        "time_left": time_left(mention.deadline_at, now, mention.first_response_at),
        "posted": f"{short_duration(now - mention.created_at)} ago",
    }
    history = [{"when": f"{short_duration(now - e.at)} ago" if e.at <= now
                else f"in {short_duration(e.at - now)}", "kind": e.kind, "actor": e.actor}
               for e in events]
    html = request.app[JINJA].get_template("mention.html").render(m=page, events=history)
    return web.Response(text=html, content_type="text/html")


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
