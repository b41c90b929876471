"""Slack incoming webhooks: `text` (the fallback, shown in notifications) plus `blocks`
(mrkdwn sections). Slack answers 200 `ok` or an error: anything else than 200 is a
failure; 429 comes with `Retry-After`; about one message a second per webhook.

Mention text may carry `<!channel>` or `<https://evil|bank>`: `&`, `<`, `>` are escaped
as Slack asks, so nothing a customer writes can ping a channel or fake a link.
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

SLACK_USER_ID = re.compile(r"^(?:<@)?([UW][A-Z0-9]{2,})>?$")
MAX_BLOCKS = 50


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


MRKDWN = message.Markup(
    escape=escape,
    bold=lambda text: f"*{text}*",
    link=lambda url, label: f"<{escape(url)}|{label}>",
    quote="> ",
)


def assignee(mention: dict[str, Any]) -> str:
    """`<@U123>` pings the agent when their `slack` is a user id; a handle (`@ayse`) is
    shown as given (incoming webhooks cannot resolve handles)."""
    handle = str(mention.get("assignee_slack") or "")
    if found := SLACK_USER_ID.match(handle):
        return f"<@{found.group(1)}>"
    if handle:
        return escape(message.cut(handle, 80))
    agent = mention.get("assignee")
    return escape(message.cut(agent, 80)) if agent else "unassigned"


class SlackSinkConfig(WebhookUrlSinkConfig):
    kind: Literal["slack"]


def section(text: str, limit: int) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": message.cut_lines(text, limit)}}


class SlackSink(PostingSink):
    kind: ClassVar[str] = "slack"
    Config: ClassVar[type[SlackSinkConfig]] = SlackSinkConfig
    limits: ClassVar[Limits] = Limits(body_maxlen=3000, title_maxlen=300, rate_per_second=1.0,
                                      private=("webhook_url",))

    def body(self, alerts: Sequence[Alert], now: datetime) -> dict[str, Any]:
        limit = self.limits.body_maxlen
        fallback = escape(message.cut(message.title(alerts, now), self.limits.title_maxlen))
        if len(alerts) == 1:
            blocks = [section(message.single(alerts[0], now, MRKDWN, assignee), limit)]
        else:
            blocks = [section(message.group_head(alerts, MRKDWN), limit)]
            blocks += [section(message.brief(a, now, MRKDWN, assignee), limit)
                       for a in alerts[: message.LISTED]]
            if rest := message.more(alerts, MRKDWN):
                blocks.append({"type": "context",
                               "elements": [{"type": "mrkdwn", "text": rest}]})
        return {"text": fallback, "blocks": blocks[:MAX_BLOCKS]}

    async def deliver(self, alerts: Sequence[Alert], now: datetime) -> None:
        body = json.dumps(self.body(alerts, now)).encode()
        await self.http.post(self.config.webhook_url.get_secret_value(), body, now,
                             only_200=True)

    async def close(self) -> None:
        await self.http.close()
