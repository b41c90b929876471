"""The lead's team view: who is on, how loaded, how today is going, and moving work.

Marking an agent away here is the same `Backlog.set_status` as the API's
`POST /api/v1/agents/{id}/status`, so their open work is handed off the same way; a bulk
move is `actions.assign` per mention, so each move is an event with the lead as actor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from listener.backlog import BACKLOG
from listener.humanize import short_duration, time_left
from listener.live import LIVE
from listener.models import OPEN_STATUSES
from listener.reports import Compliance, ResponseStats, mentions_by_id, open_assigned, team_figures
from listener.services import SERVICES
from listener.store import queries as q
from listener.store.actions import NotFound, assign
from listener.store.routing import AGENT_STATUSES
from listener.web.access import current_user, requires
from listener.web.i18n import Formats
from listener.web.pages import page_lang, render
from sla.policy import sla_state

routes = web.RouteTableDef()
MAX_MOVE = 500
ROUTER = ""  # the bulk move's target meaning "router decides"
# Why a bulk move did nothing, as a code in the redirect (never text from the request).
MOVE_ERRORS = {
    "none-selected": "Select at least one mention to move.",
    "unknown-agent": "Pick an agent from the list.",
    "same-agent": "Pick another agent than the one who has them.",
}


def _count(value: str | None) -> int | None:
    """A count from the redirect's query; anything else shows no notice."""
    if value and value.isascii() and value.isdigit() and len(value) < 7:
        return int(value)
    return None


def _compliance_cell(c: Compliance | None, fmt: Formats) -> dict[str, Any]:
    c = c or Compliance()
    return {"ratio": fmt.percent(c.ratio), "met": c.met, "counted": c.counted,
            "breached": c.breached}


def _median(stats: ResponseStats | None) -> str:
    if stats is None or stats.p50 is None:
        return "–"
    return short_duration(timedelta(seconds=stats.p50))


@routes.get("/team")
@requires("lead")
async def team_page(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    now = svc.clock.now()
    async with svc.store.read() as session:
        agents = await q.list_agents(session)
        figures = await team_figures(session, now, svc.config.tz)
        held = await open_assigned(session)
    on_shift = {a.id for a in svc.pipeline.routing.agents
                if a.shift is None or a.shift.covers(now)}
    fmt = Formats(page_lang(request), svc.config.tz)
    rows = []
    for agent, load in agents:
        answered = figures.answered_today.get(agent.id)
        rows.append({
            "id": agent.id, "name": agent.name or agent.id, "status": agent.status,
            "on_shift": agent.id in on_shift, "shift": agent.shift, "load": load,
            "max_open": agent.max_open, "answered": answered.count if answered else 0,
            "median": _median(answered),
            "held": [_mention_row(m, a, now) for m, a in held.get(agent.id, [])],
        })
    channels = sorted(set(figures.compliance_today) | set(figures.compliance_week))
    compliance = [{"channel": channel,
                   "today": _compliance_cell(figures.compliance_today.get(channel), fmt),
                   "week": _compliance_cell(figures.compliance_week.get(channel), fmt)}
                  for channel in channels]
    query = request.query
    notice = {"moved": _count(query.get("moved")), "skipped": _count(query.get("skipped")),
              "error": MOVE_ERRORS.get(query.get("error", ""))}
    return render(request, "team.html", agents=rows, compliance=compliance,
                  total_today=_compliance_cell(figures.total_today, fmt),
                  total_week=_compliance_cell(figures.total_week, fmt),
                  today=figures.today, week=figures.week, notice=notice)


def _mention_row(mention: Any, author: Any, now: datetime) -> dict[str, Any]:
    state = sla_state(mention.deadline_at, mention.at_risk_at, mention.first_response_at, now)
    return {"id": mention.id, "channel": mention.channel,
            "handle": author.handle if author else "?", "text": mention.text[:280],
            "state": state or "none", "time_left": time_left(mention.deadline_at, now)}


def _back(**params: Any) -> web.HTTPSeeOther:
    return web.HTTPSeeOther("/team" + ("?" + urlencode(params) if params else ""))


@routes.post("/team/reassign")
@requires("lead")
async def bulk_reassign(request: web.Request) -> web.StreamResponse:
    """Give the selected open mentions of one agent to another, or back to the router.
    A mention that moved or was answered since the page was drawn is skipped."""
    svc = request.app[SERVICES]
    form = await request.post()
    source = str(form.get("agent", ""))
    target = str(form.get("to", ""))
    ids = list(dict.fromkeys(int(v) for v in form.getall("mention", [])
                             if isinstance(v, str) and v.isascii() and v.isdigit()
                             and len(v) <= 10))[:MAX_MOVE]
    if not ids:
        raise _back(error="none-selected")
    async with svc.store.read() as session:
        active = {agent.id for agent, _ in await q.list_agents(session)}
    if target != ROUTER and target not in active:
        raise _back(error="unknown-agent")
    if target == source:
        raise _back(error="same-agent")
    actor = current_user(request).name
    now = svc.clock.now()
    moved: list[int] = []
    async with svc.store.write() as session:
        rows = await mentions_by_id(session, ids)
        for mention_id in ids:
            mention = rows.get(mention_id)
            if mention is None or mention.assignee != source or \
                    mention.status not in OPEN_STATUSES:
                continue
            await assign(session, mention_id, target or None, actor, now)
            moved.append(mention_id)
    request.app[LIVE].mentions_changed(moved, "assigned")  # open queue pages redraw
    request.app[BACKLOG].wake()  # unassigned ones wait for the router; freed capacity too
    raise _back(moved=len(moved), skipped=len(ids) - len(moved))


@routes.post("/team/agents/{agent_id}/status")
@requires("lead")
async def set_status(request: web.Request) -> web.StreamResponse:
    """Away or back, exactly as the API does it: away hands the agent's open work off."""
    svc = request.app[SERVICES]
    status = (await request.post()).get("status")
    if status not in AGENT_STATUSES:
        raise web.HTTPBadRequest(text="status must be available or away")
    try:
        await request.app[BACKLOG].set_status(request.match_info["agent_id"], str(status),
                                              current_user(request).name, svc.clock.now())
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    raise _back()
