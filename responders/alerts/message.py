"""What an alert says, independent of where it goes: the kind, the channel, a link to
the mention, the author, an excerpt, the assignee, the policy, and the time left or
overdue, computed at delivery from `deadline_at` and `now`.

Everything taken from a mention (text, author, even its URL) is hostile input. Each
chat sink passes a `Markup` that escapes for its format; text is cut before it is
escaped, so a cut never splits an escape sequence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from listener.humanize import time_left
from responders.alerts.base import Alert

EXCERPT_CHARS = 300
SHORT_EXCERPT_CHARS = 100
AUTHOR_CHARS = 80
LISTED = 10
KIND_LABELS = {
    "at_risk": "SLA at risk",
    "breached": "SLA breached",
    "escalated": "SLA escalated",
    "spike": "Mention spike",
    "competitor_spike": "Competitor spike",
}
SPIKES = ("spike", "competitor_spike")  # about many mentions, not one
# Characters that may stay in a link target; anything else is percent-encoded, so a
# hostile URL cannot close the link (`>`, `|`, `)`) or break out of it (spaces, quotes).
URL_SAFE = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%]")


@dataclass(frozen=True)
class Markup:
    """How one format writes emphasis, links and quotes, and escapes text."""

    escape: Callable[[str], str]
    bold: Callable[[str], str]
    link: Callable[[str, str], str]  # (safe url, escaped label) → markup
    quote: str = "> "


PLAIN = Markup(escape=lambda text: text, bold=lambda text: text,
               link=lambda url, label: f"{label}: {url}", quote="  ")


def cut(text: str, limit: int) -> str:
    """One line of at most `limit` characters, an ellipsis marking a cut."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)].rstrip() + "…"


def cut_lines(text: str, limit: int) -> str:
    """A last guard on a whole escaped block: keeps its lines, never ends inside an
    entity like `&amp;`."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"


def safe_url(url: Any) -> str | None:
    """An http(s) URL fit to put inside link markup, or None."""
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return URL_SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()),
                        url.strip())


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " "))


def mention_of(alert: Alert) -> dict[str, Any]:
    mention = alert.payload.get("mention")
    return mention if isinstance(mention, dict) else {}


def due(mention: dict[str, Any], now: datetime) -> str:
    deadline = mention.get("deadline_at")
    try:
        at = datetime.fromisoformat(deadline) if isinstance(deadline, str) else None
    except ValueError:
        at = None
    return time_left(at, now)


def time_left_seconds(alert: Alert, now: datetime) -> int | None:
    deadline = mention_of(alert).get("deadline_at")
    try:
        at = datetime.fromisoformat(deadline) if isinstance(deadline, str) else None
    except ValueError:
        return None
    return None if at is None else int((at - now).total_seconds())


def author(mention: dict[str, Any]) -> str:
    who = mention.get("author") if isinstance(mention.get("author"), dict) else {}
    handle, name = str(who.get("handle") or ""), str(who.get("name") or "")
    if name and handle and name != handle:
        return cut(f"{name} ({handle})", AUTHOR_CHARS)
    return cut(name or handle or "unknown author", AUTHOR_CHARS)


def link(mention: dict[str, Any], m: Markup) -> str:
    url = safe_url(mention.get("dashboard_url")) or safe_url(mention.get("url"))
    label = m.escape(f"mention #{mention.get('id', '?')}")
    return m.link(url, label) if url else label


def single(alert: Alert, now: datetime, m: Markup,
           assignee: Callable[[dict[str, Any]], str]) -> str:
    """The message for one alert, several lines."""
    if alert.kind in SPIKES:
        return spike(alert, m)
    mention = mention_of(alert)
    lines = [
        f"{m.bold(m.escape(kind_label(alert.kind)))} · {m.escape(cut(mention.get('channel'), 30))}"
        f" · {link(mention, m)}",
        f"{m.bold('Author:')} {m.escape(author(mention))}",
        m.quote + m.escape(cut(mention.get("text"), EXCERPT_CHARS)),
        f"{m.bold('Assignee:')} {assignee(mention)} · {m.bold('Policy:')} "
        f"{m.escape(cut(mention.get('policy') or 'none', 60))} · "
        f"{m.bold(m.escape(due(mention, now)))}",
    ]
    escalate_to = mention.get("escalate_to")
    if alert.kind == "escalated" and isinstance(escalate_to, list) and escalate_to:
        lines.append(f"{m.bold('Escalated to:')} "
                     + m.escape(cut(", ".join(map(str, escalate_to)), 200)))
    return "\n".join(lines)


def spike(alert: Alert, m: Markup) -> str:
    """Ours, or a competitor's (`brand` in the payload)."""
    p = alert.payload
    label = kind_label(alert.kind if alert.kind in SPIKES else "spike")
    if p.get("brand"):
        label += f" · {cut(p['brand'], 50)}"
    head = (f"{m.bold(m.escape(label))}: {m.escape(str(p.get('count', '?')))} "
            f"mentions in {m.escape(cut(p.get('window'), 20))} "
            f"(usually {m.escape(str(p.get('baseline', '?')))})")
    examples = p.get("examples") if isinstance(p.get("examples"), list) else []
    lines = [head]
    for example in examples[:3]:
        if isinstance(example, dict):
            lines.append(f"• {m.escape(cut(example.get('channel'), 30))} · {link(example, m)} · "
                         f"{m.escape(author(example))}: "
                         f"{m.escape(cut(example.get('text'), SHORT_EXCERPT_CHARS))}")
    return "\n".join(lines)


def brief(alert: Alert, now: datetime, m: Markup,
          assignee: Callable[[dict[str, Any]], str]) -> str:
    """One alert as one line of a grouped message."""
    if alert.kind in SPIKES:
        return "• " + spike(alert, m).split("\n", 1)[0]
    mention = mention_of(alert)
    return (f"• {m.escape(kind_label(alert.kind))} · {m.escape(cut(mention.get('channel'), 30))}"
            f" · {link(mention, m)} · {m.escape(author(mention))}: "
            f"{m.escape(cut(mention.get('text'), SHORT_EXCERPT_CHARS))} · {assignee(mention)}"
            f" · {m.escape(due(mention, now))}")


def counts(alerts: Sequence[Alert]) -> str:
    by_kind = Counter(a.kind for a in alerts)
    return ", ".join(f"{n} {kind_label(k).removeprefix('SLA ').lower()}"
                     for k, n in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0])))


def title(alerts: Sequence[Alert], now: datetime) -> str:
    """A plain one-line summary: the notification preview and the Slack fallback."""
    if len(alerts) > 1:
        return f"{len(alerts)} SLA alerts ({counts(alerts)})"
    [alert] = alerts
    if alert.kind in SPIKES:
        brand = alert.payload.get("brand")
        label = kind_label(alert.kind) + (f" · {cut(brand, 50)}" if brand else "")
        return f"{label}: {alert.payload.get('count', '?')} mentions"
    mention = mention_of(alert)
    return (f"{kind_label(alert.kind)}: {cut(mention.get('channel'), 30)} mention by "
            f"{author(mention)}, {due(mention, now)}")


def group_head(alerts: Sequence[Alert], m: Markup) -> str:
    return f"{m.bold(m.escape(f'{len(alerts)} SLA alerts'))} ({m.escape(counts(alerts))})"


def more(alerts: Sequence[Alert], m: Markup) -> str | None:
    rest = len(alerts) - LISTED
    return m.escape(f"and {rest} more") if rest > 0 else None
