"""Mattermost incoming webhooks: `{"text": <Markdown>}`.

Mention text is escaped for Markdown: `&`, `<`, `>` as entities, the punctuation that
makes links, emphasis, code or tables backslash-escaped, and `@` followed by a zero-width
space so `@channel`/`@all`/`@someone` in a customer's post never pings anyone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from responders.alerts import message
from responders.alerts.base import Alert, Limits
from responders.alerts.http import PostingSink, WebhookUrlSinkConfig

MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]()#~|!{}])")
HANDLE = re.compile(r"^@[A-Za-z0-9._-]{1,64}$")
ZERO_WIDTH_SPACE = "\u200b"


def escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    return text.replace("@", "@" + ZERO_WIDTH_SPACE)


MARKDOWN = message.Markup(
    escape=escape,
    bold=lambda text: f"**{text}**",
    link=lambda url, label: f"[{label}]({url})",
    quote="> ",
)


def assignee(mention: dict[str, Any]) -> str:
    """The agent's handle as configured (`@ayse`) mentions them; else the agent id."""
    handle = str(mention.get("assignee_slack") or "")
    if HANDLE.match(handle):
        return handle
    agent = mention.get("assignee")
    return escape(message.cut(agent, 80)) if agent else "unassigned"


class MattermostSinkConfig(WebhookUrlSinkConfig):
    kind: Literal["mattermost"]


class MattermostSink(PostingSink):
    kind: ClassVar[str] = "mattermost"
    Config: ClassVar[type[MattermostSinkConfig]] = MattermostSinkConfig
    limits: ClassVar[Limits] = Limits(body_maxlen=4000, rate_per_second=1.0,
                                      private=("webhook_url",))

    def body(self, alerts: Sequence[Alert], now: datetime) -> dict[str, Any]:
        if len(alerts) == 1:
            text = message.single(alerts[0], now, MARKDOWN, assignee)
        else:
            lines = [message.group_head(alerts, MARKDOWN)]
            lines += [message.brief(a, now, MARKDOWN, assignee)
                      for a in alerts[: message.LISTED]]
            if rest := message.more(alerts, MARKDOWN):
                lines.append(rest)
            text = "\n".join(lines)
        return {"text": message.cut_lines(text, self.limits.body_maxlen)}

    async def deliver(self, alerts: Sequence[Alert], now: datetime) -> None:
        body = json.dumps(self.body(alerts, now)).encode()
        await self.http.post(self.config.webhook_url.get_secret_value(), body, now)

    async def close(self) -> None:
        await self.http.close()
