"""What the mention page shows, read from the store in one go: the mention, its customer
and their cross-channel timeline, the SLA box with the calendar steps, the history.

Every value here is plain data; the template escapes it. Customer-written text is never
marked safe, and only http(s) links become links.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from listener.explain import deadline_steps
from listener.humanize import short_duration
from listener.models import Agent, Author, Mention, MentionEvent
from listener.services import Services
from listener.store import customers as c
from listener.store import queries as q
from sla.policy import sla_state

TIMELINE_PAGE = 20
TIMELINE_TEXT = 280  # characters of each timeline entry; the full text is one click away
DETAIL_TEXT = 200  # characters of a reply or note quoted in the history
Translate = Callable[..., str]


def web_link(url: str | None) -> str | None:
    """Only http(s) addresses become links: never javascript:, data: or relative ones."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


def clipped(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def sla_words(_: Translate, deadline_at: datetime | None, now: datetime,
              answered_at: datetime | None) -> str:
    """`listener.humanize.time_left`, in the page's language."""
    if deadline_at is None:
        return _("no deadline")
    if answered_at is not None:
        gap = deadline_at - answered_at
        if gap >= timedelta(0):
            return _("answered {d} early", d=short_duration(gap))
        return _("answered {d} late", d=short_duration(gap))
    left = deadline_at - now
    if left >= timedelta(0):
        return _("{d} left", d=short_duration(left))
    return _("overdue by {d}", d=short_duration(left))


def sentiment_word(score: float) -> str:
    return "negative" if score <= -0.25 else "positive" if score >= 0.25 else "neutral"


def event_detail(event: MentionEvent) -> str:
    """The one thing worth knowing about a history line: to whom, why, or what was said."""
    data = event.data or {}
    parts = []
    if event.kind in ("assigned", "unassigned") and data.get("agent"):
        parts.append(f"→ {data['agent']}")
    for key in ("reason", "note", "text"):
        if data.get(key):
            parts.append(clipped(str(data[key]), DETAIL_TEXT))
    return " · ".join(parts)


@dataclass
class MentionView:
    mention: Mention
    author: Author | None
    now: datetime
    customer: c.CustomerDetail | None = None
    agents: list[tuple[Agent, int]] = field(default_factory=list)
    events: list[MentionEvent] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    @property
    def url(self) -> str | None:
        return web_link(self.mention.url)

    @property
    def is_open(self) -> bool:
        return self.mention.status in ("new", "assigned")

    @property
    def answered(self) -> bool:
        return self.mention.first_response_at is not None

    @property
    def sla_state(self) -> str:
        m = self.mention
        return sla_state(m.deadline_at, m.at_risk_at, m.first_response_at, self.now) or "none"

    @property
    def counting_down(self) -> bool:
        """The live countdown runs only while the clock does."""
        return self.is_open and not self.answered and self.mention.deadline_at is not None

    @property
    def sentiment(self) -> str:
        return sentiment_word(self.mention.sentiment)

    def timeline(self) -> list[dict[str, Any]]:
        if self.customer is None:
            return []
        return [{**item, "text": clipped(item["text"], TIMELINE_TEXT),
                 "url": web_link(item["url"]),
                 "here": item["mention_id"] == self.mention.id and item["type"] == "mention"}
                for item in self.customer.timeline]

    def history(self) -> list[dict[str, Any]]:
        return [{"at": e.at, "kind": e.kind, "actor": e.actor or "", "detail": event_detail(e)}
                for e in reversed(self.events)]  # newest first, like the timeline


async def load_view(services: Services, mention_id: int,
                    older: str | None = None) -> MentionView | None:
    """None when there is no such mention. `older` pages the customer's timeline."""
    now = services.clock.now()
    async with services.store.read() as session:
        row = await q.get_mention(session, mention_id)
        if row is None:
            return None
        view = MentionView(*row, now=now)
        if view.mention.customer_id is not None:
            view.customer = await c.customer_detail(
                session, view.mention.customer_id, TIMELINE_PAGE, timeline_cursor(older),
                history_limit=0)
        view.agents = await q.list_agents(session)
        view.events = await q.events_for(session, mention_id)
    customer_row = view.customer.customer if view.customer else None
    steps, _ = deadline_steps(services, view.mention, customer_row)
    view.steps = [step.strip() for step in steps]
    return view


def timeline_cursor(older: str | None) -> str | None:
    """A cursor this page handed out, or None (the first page) for anything else."""
    if not older:
        return None
    try:
        c.decode_timeline_cursor(older)
    except ValueError:
        return None
    return older
