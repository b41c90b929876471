"""The mention page: where alert links land and where an agent answers one customer.

GET shows the mention, its customer's cross-channel timeline, the SLA box and the history,
with the reply composer. Each action is a POST form (CSRF-checked by the session
middleware) done by the signed-in user, whose name is the actor; it redirects back with a
notice (`?done=`), or shows the page again with the error and the text the agent typed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connectors.base import ReplyRefused
from listener.services import SERVICES
from listener.store import customers as c
from listener.store.actions import Conflict, Invalid, NotFound, assign, ignore, mark_responded
from listener.web.access import current_user, requires
from listener.web.api import MAX_MENTION_ID, MAX_REASON
from listener.web.i18n import translator
from listener.web.mention_actions import TooLong, act, send_and_record, why_no_sending
from listener.web.mention_compose import compose, composer_box, draft_lang
from listener.web.mention_view import MentionView, load_view, sla_words
from listener.web.pages import page_lang, render
from responders.drafts import LANGS, UnknownTemplate
from responders.platform import CannotSend

routes = web.RouteTableDef()
MENTION = "/mentions/{id:[0-9]{1,19}}"  # any 64-bit id; above 2**63 - 1: 404
MAX_NOTE = 10_000
MAX_REPLY = 40_000  # above every platform's limit; the channel limit is checked too

# `?done=` codes and the notice each shows; only these, so a link cannot put words on it.
NOTICES = {
    "claimed": "You took this mention.",
    "assigned": "Assignment saved.",
    "note": "Note added to the customer's timeline.",
    "offer": "Offer added to the customer's timeline.",
    "ignored": "Ignored: it left the queue and no deadline alerts will fire.",
    "responded": "Marked responded: the clock stopped.",
    "sent": "Reply posted on the platform: the clock stopped.",
    "copied": "Reply copied and the mention marked responded.",
}


# Why an action did not happen, as the page says it (translated, `{fields}` filled in).
PROBLEMS = {
    "no_agent": "Your login is not linked to an agent, so you cannot claim mentions. "
                "Ask an admin to set your agent id.",
    "note_kind": "Choose note or offer.",
    "note_empty": "Write the note first.",
    "no_customer": "This mention has no customer to add a note to.",
    "reason_empty": "Say why it is ignored.",
    "reply_empty": "Write the reply first.",
    "too_long_field": "At most {limit} characters, please.",
    "too_long_reply": "The reply is {length} characters; {channel} allows {limit}. "
                      "Shorten it before sending.",
    "cannot_send": "This source cannot post replies: {why}",
    "refused": "The platform refused the reply; nothing was sent: {why}",
    "answered": "This mention was already answered.",
    "not_open": "Only open mentions can be ignored.",
    "store": "{why}",  # the store's own explanation (a conflict, an unknown agent)
}


class ActionFailed(Exception):
    """Shown on the page again with the text the agent typed."""

    def __init__(self, status: int, problem: str, **fields: Any):
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.fields = fields


def mention_id_of(request: web.Request) -> int:
    mention_id = int(request.match_info["id"])
    if mention_id > MAX_MENTION_ID:
        raise web.HTTPNotFound(text=f"mention {mention_id} does not exist")
    return mention_id


async def view_or_404(request: web.Request, older: str | None = None) -> MentionView:
    mention_id = mention_id_of(request)
    view = await load_view(request.app[SERVICES], mention_id, older)
    if view is None:
        raise web.HTTPNotFound(text=f"mention {mention_id} does not exist")
    return view


async def show(request: web.Request, view: MentionView, status: int = 200,
               error: str | None = None, text: str | None = None,
               intent: str | None = None) -> web.Response:
    """The page. `text` is what sits in the composer (a draft, or what the agent typed)."""
    svc = request.app[SERVICES]
    lang = draft_lang(view, request.query.get("lang"))
    if text is None and intent:
        try:
            drafted = await compose(svc, view.mention.id, intent, lang, current_user(request))
            text = drafted.text if drafted else None
        except UnknownTemplate:
            intent = None
    return render(
        request, "mention.html", status=status, v=view, m=view.mention, a=view.author,
        customer=view.customer, notice=NOTICES.get(request.query.get("done", "")),
        error=error, blocker=why_no_sending(request, view.mention),
        composer=composer_box(svc, view, text or "", intent, lang),
        older=request.query.get("older") or None, sla_words=sla_words,
    )


@routes.get(MENTION)
async def mention_page(request: web.Request) -> web.Response:
    """Where alert links land: the mention, how long is left, and what happened to it."""
    view = await view_or_404(request, request.query.get("older"))
    return await show(request, view, intent=request.query.get("intent") or None)


@routes.get(MENTION + "/draft")
async def draft(request: web.Request) -> web.Response:
    """The composer's template picker: a draft for an intent, and its length."""
    mention_id = mention_id_of(request)
    lang = request.query.get("lang")
    try:
        drafted = await compose(request.app[SERVICES], mention_id,
                                request.query.get("intent", ""),
                                lang if lang in LANGS else None, current_user(request))
    except UnknownTemplate as exc:
        return web.json_response({"error": str(exc)}, status=404)
    if drafted is None:
        raise web.HTTPNotFound(text=f"mention {mention_id} does not exist")
    return web.json_response(drafted.as_json())


async def form(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {key: value for key, value in posted.items() if isinstance(value, str)}


async def attempt(request: web.Request, done: str, work: Callable[[], Awaitable[Any]],
                  text: str | None = None, conflict: str = "store") -> web.Response:
    """Run one action; back to the page with a notice, or the page again with the error
    (`conflict`: the PROBLEMS entry that explains a Conflict best)."""
    try:
        await work()
    except ActionFailed as failed:
        return await failure(request, failed, text)
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    except Invalid as exc:
        return await failure(request, ActionFailed(422, "store", why=str(exc)), text)
    except Conflict as exc:
        return await failure(request, ActionFailed(409, conflict, why=str(exc)), text)
    raise web.HTTPSeeOther(f"/mentions/{mention_id_of(request)}?done={done}")


async def failure(request: web.Request, failed: ActionFailed,
                  text: str | None) -> web.Response:
    view = await view_or_404(request)
    message = translator(page_lang(request))(PROBLEMS[failed.problem], **failed.fields)
    return await show(request, view, status=failed.status, error=message, text=text)


def required(fields: dict[str, str], key: str, limit: int, missing: str) -> str:
    value = fields.get(key, "").strip()
    if not value:
        raise ActionFailed(422, missing)
    if len(value) > limit:
        raise ActionFailed(422, "too_long_field", limit=limit)
    return value


@routes.post(MENTION + "/claim")
async def claim(request: web.Request) -> web.Response:
    """Take the mention: assign it to the signed-in user's own agent."""
    user = current_user(request)

    async def work() -> None:
        if not user.agent_id:
            raise ActionFailed(422, "no_agent")
        await act(request, mention_id_of(request), assign, agent_id=user.agent_id,
                  actor=user.name)

    return await attempt(request, "claimed", work)


@routes.post(MENTION + "/assign")
@requires("lead")
async def assign_to(request: web.Request) -> web.Response:
    """Give the mention to any configured agent, or back to the unassigned queue."""
    user = current_user(request)
    agent = (await form(request)).get("agent", "").strip() or None
    return await attempt(request, "assigned", lambda: act(
        request, mention_id_of(request), assign, agent_id=agent, actor=user.name))


@routes.post(MENTION + "/note")
async def add_note(request: web.Request) -> web.Response:
    """A note or an offer on the mention's customer, signed with the user's name."""
    user = current_user(request)
    fields = await form(request)
    kind = fields.get("kind", "note")
    svc = request.app[SERVICES]

    async def work() -> None:
        if kind not in c.NOTE_KINDS:
            raise ActionFailed(422, "note_kind")
        text = required(fields, "text", MAX_NOTE, "note_empty")
        view = await view_or_404(request)
        if view.mention.customer_id is None:
            raise ActionFailed(409, "no_customer")
        async with svc.store.write() as session:
            await c.add_note(session, view.mention.customer_id, kind, text, user.name,
                             svc.clock.now())

    return await attempt(request, kind if kind in c.NOTE_KINDS else "note", work)


@routes.post(MENTION + "/ignore")
async def ignore_mention(request: web.Request) -> web.Response:
    """Out of the queue with a reason everyone can read in the history."""
    user = current_user(request)
    fields = await form(request)

    async def work() -> None:
        reason = required(fields, "reason", MAX_REASON, "reason_empty")
        await act(request, mention_id_of(request), ignore, reason=reason, actor=user.name)

    return await attempt(request, "ignored", work, conflict="not_open")


@routes.post(MENTION + "/respond")
async def respond(request: web.Request) -> web.Response:
    """Answered outside Listener (a call, the platform's own app): stop the clock."""
    user = current_user(request)
    note = (await form(request)).get("note", "").strip()[:MAX_NOTE] or None
    return await attempt(request, "responded", lambda: act(
        request, mention_id_of(request), mark_responded, actor=user.name, note=note),
        conflict="answered")


@routes.post(MENTION + "/reply")
async def reply(request: web.Request) -> web.Response:
    """The composer's buttons: post the reply through the source (`how=send`), or the
    agent copied it to answer on the platform themselves (`how=copied`)."""
    user = current_user(request)
    fields = await form(request)
    how = fields.get("how", "send")
    text = fields.get("text", "")

    async def work() -> None:
        body = required(fields, "text", MAX_REPLY, "reply_empty")
        view = await view_or_404(request)
        if how == "copied":
            await act(request, view.mention.id, mark_responded, actor=user.name, note=body)
            return
        try:
            await send_and_record(request, (view.mention, view.author), body, user.name)
        except TooLong as exc:
            raise ActionFailed(422, "too_long_reply", length=exc.length, limit=exc.limit,
                               channel=exc.channel) from None
        except CannotSend as exc:
            raise ActionFailed(409, "cannot_send", why=str(exc)) from None
        except ReplyRefused as exc:
            raise ActionFailed(exc.status if exc.status in (422, 429) else 502, "refused",
                               why=exc.message) from None

    return await attempt(request, "copied" if how == "copied" else "sent", work, text,
                         conflict="answered")
