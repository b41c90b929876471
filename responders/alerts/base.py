"""The one small interface every alert sink implements, the config every sink kind
extends, and what a sink declares about itself (Apprise-style limits as data).

A sink only knows its service: `deliver(alerts, now)` sends one message for one or more
alerts, or raises one of the typed errors below. It never touches the database; the
outbox worker (`outbox.py`) decides what is due, groups, retries and records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, model_validator

from listener.config_fields import Duration, Section

ALERT_KINDS = ("at_risk", "breached", "escalated", "spike", "competitor_spike")
AlertKind = Literal["at_risk", "breached", "escalated", "spike", "competitor_spike"]


class SinkConfig(Section):
    """Keys every sink has. `name` is what outbox rows, metrics and `GET /api/v1/alerts`
    call the sink; the config fills in `<kind>-<index>` when it is not given."""

    name: str = Field("", max_length=100, pattern=r"^[A-Za-z0-9_.-]*$")
    enabled: bool = True
    on: list[AlertKind] = Field(["at_risk", "breached"])
    group_window: Duration = timedelta(seconds=10)
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("kind"), str):
            return {**data, "name": data["kind"]}
        return data


def required_url(value: SecretStr, info: ValidationInfo, schemes: tuple[str, ...] = (
        "http", "https")) -> SecretStr:
    """For a field validator: an enabled sink needs a usable URL (an unset `${VAR:-}`
    gives an empty one). The value is a secret, so the message never repeats it."""
    url = value.get_secret_value()
    if not info.data.get("enabled", True):
        return value
    if not url:
        raise ValueError("required while the sink is enabled (or set enabled: false)")
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"expected a {' or '.join(s + '://' for s in schemes)} URL")
    return value


@dataclass(frozen=True)
class Limits:
    """What a service accepts, declared once per sink kind. `body_maxlen` bounds one text
    block (Slack: a section's 3000 characters); `rate_per_second` paces messages to one
    endpoint; `private` names the config fields that must never be shown; `max_group`
    caps how many alerts one message carries (None: any number, summarised)."""

    body_maxlen: int
    title_maxlen: int = 250
    rate_per_second: float | None = None
    private: tuple[str, ...] = ()
    max_group: int | None = None


@dataclass(frozen=True)
class Alert:
    """One outbox row as a sink sees it."""

    id: int
    sink: str
    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int = 0


class SinkError(Exception):
    """Not delivered, worth retrying later (5xx, timeout, connection refused). Messages
    never contain a secret or a webhook URL: they end up in `GET /api/v1/alerts`."""


class SinkRateLimited(SinkError):
    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after


class SinkRefused(SinkError):
    """The service refused the message for good (400, 403, 404...): retrying cannot
    help, the operator must fix the config."""


class Sink(Protocol):
    kind: ClassVar[str]
    Config: ClassVar[type[SinkConfig]]
    limits: ClassVar[Limits]
    config: SinkConfig

    @property
    def name(self) -> str: ...

    async def deliver(self, alerts: Sequence[Alert], now: datetime) -> None: ...

    async def close(self) -> None: ...


class Throttle:
    """At most one message per `interval` seconds to one endpoint (Slack asks for about
    one a second per webhook). Waits with `asyncio.sleep`; time and sleep are injectable
    so tests see the wait without taking it."""

    def __init__(self, interval: float, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.interval = interval
        self.monotonic = monotonic
        self.sleep = sleep
        self._next: float | None = None

    @classmethod
    def for_limits(cls, limits: Limits) -> Throttle:
        rate = limits.rate_per_second
        return cls(1.0 / rate if rate else 0.0)

    async def wait(self) -> None:
        now = self.monotonic()
        if self._next is not None and self._next > now:
            await self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval
