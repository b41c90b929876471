"""Any service Apprise knows (Telegram, Teams, e-mail, ntfy, Discord...) by its Apprise
URL: a plain-text title and body; Apprise converts and escapes them for the service.

The URL holds the service's credentials: logs and errors only ever show Apprise's
privacy form of it (`tgram://1...p/12345`). Apprise does not hand back HTTP statuses,
only log lines; `error=NNN` in them is read to tell a refusal (4xx: failed for good)
from an outage (retried). A failure without one is retried.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import SecretStr, ValidationInfo, field_validator

from responders.alerts import message
from responders.alerts.base import (
    Alert,
    Limits,
    SinkConfig,
    SinkError,
    SinkRateLimited,
    SinkRefused,
    Throttle,
)

STATUS_IN_LOG = re.compile(r"\berror=(\d{3})\b")
BODY_CHARS = 4000


def load(url: str) -> Any:
    """An `Apprise` object holding this one URL, or ValueError when Apprise does not
    understand it (the message never repeats the URL)."""
    import apprise

    notifier = apprise.Apprise()
    if not url or not notifier.add(url):
        raise ValueError("not an Apprise URL this version understands "
                         "(see Apprise's list of supported services)")
    return notifier


def privacy_url(notifier: Any) -> str:
    """Apprise's own masked form of the URL, without its query string."""
    return " ".join(server.url(privacy=True).split("?", 1)[0] for server in notifier)


def failure(privacy: str, log_lines: Sequence[str], timed_out: bool) -> SinkError:
    if timed_out:
        return SinkError(f"{privacy}: no answer in time")
    statuses = [int(found.group(1)) for line in log_lines
                for found in STATUS_IN_LOG.finditer(line)]
    if not statuses:
        return SinkError(f"{privacy}: not delivered (connection failed or no answer)")
    status = statuses[-1]
    reason = f"{privacy}: HTTP {status}"
    if status == 429:
        return SinkRateLimited(reason, None)
    if 400 <= status < 500 and status != 408:
        return SinkRefused(reason)
    return SinkError(reason)


class AppriseSinkConfig(SinkConfig):
    kind: Literal["apprise"]
    url: SecretStr

    @field_validator("url")
    @classmethod
    def _understood(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("enabled", True):
            load(value.get_secret_value())
        return value


class AppriseSink:
    kind: ClassVar[str] = "apprise"
    Config: ClassVar[type[AppriseSinkConfig]] = AppriseSinkConfig
    limits: ClassVar[Limits] = Limits(body_maxlen=BODY_CHARS, rate_per_second=1.0,
                                      private=("url",))

    def __init__(self, config: AppriseSinkConfig, throttle: Throttle | None = None):
        self.config = config
        self.throttle = throttle or Throttle.for_limits(self.limits)
        self.notifier = load(config.url.get_secret_value())
        self.privacy = privacy_url(self.notifier)

    @property
    def name(self) -> str:
        return self.config.name

    def body(self, alerts: Sequence[Alert], now: datetime) -> tuple[str, str]:
        """(title, body) as plain text."""
        plain = message.PLAIN

        def assignee(mention: dict[str, Any]) -> str:
            return message.cut(mention.get("assignee_slack") or mention.get("assignee")
                               or "unassigned", 80)

        if len(alerts) == 1:
            text = message.single(alerts[0], now, plain, assignee)
        else:
            lines = [message.group_head(alerts, plain)]
            lines += [message.brief(a, now, plain, assignee) for a in alerts[: message.LISTED]]
            if rest := message.more(alerts, plain):
                lines.append(rest)
            text = "\n".join(lines)
        title = message.cut(message.title(alerts, now), self.limits.title_maxlen)
        return title, message.cut_lines(text, self.limits.body_maxlen)

    async def deliver(self, alerts: Sequence[Alert], now: datetime) -> None:
        import apprise

        title, body = self.body(alerts, now)
        log_lines: list[str] = []
        await self.throttle.wait()
        result = await self.notifier.async_notify(
            body=body, title=title, body_format=apprise.NotifyFormat.TEXT,
            timeout=self.config.timeout.total_seconds(),
            log_callback=lambda entry, service: log_lines.append(str(entry.message)),
            log_level=logging.WARNING,
        )
        if result:
            return
        timed_out = getattr(result, "status", None) == apprise.AppriseResultStatus.TIMEOUT
        raise failure(self.privacy, log_lines, timed_out)

    async def close(self) -> None:
        """Apprise keeps no connection open between notifications."""
