"""Posting one message to a webhook, and the HTTP status → typed error mapping every
HTTP sink shares: 429 waits for `Retry-After`; 408, 5xx, timeouts and connection errors
are retried; any other refusal is final. Redirects are not followed (a moved webhook is
a config error, and a redirect must not carry the alert somewhere else).

Error messages name the status and the service's short answer, never the URL: a
webhook URL is a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr, ValidationInfo, field_validator

from connectors.http import retry_after_seconds
from responders.alerts.base import (
    Limits,
    SinkConfig,
    SinkError,
    SinkRateLimited,
    SinkRefused,
    Throttle,
    required_url,
)

USER_AGENT = "Listener/0.1 (alerts)"
ANSWER_CHARS = 200


def answer_text(body: bytes) -> str:
    """The start of the service's answer, on one line, for `last_error`."""
    text = body[:ANSWER_CHARS].decode("utf-8", "replace")
    return " ".join(text.split())


def raise_for_status(status: int, headers: Mapping[str, str], body: bytes, now: datetime,
                     only_200: bool = False) -> None:
    """Returns when the service took the message; raises the error the worker acts on."""
    if status == 200 or (200 <= status < 300 and not only_200):
        return
    answer = answer_text(body)
    reason = f"HTTP {status}" + (f": {answer}" if answer else "")
    if status == 429:
        raise SinkRateLimited(reason, retry_after_seconds(headers, now))
    if status == 408 or status >= 500 or 200 <= status < 300:
        raise SinkError(reason)
    raise SinkRefused(reason)


class HttpPoster:
    """An aiohttp session made on first use (it needs the running loop), paced by the
    sink's declared rate."""

    def __init__(self, timeout: timedelta, limits: Limits, throttle: Throttle | None = None):
        self.timeout = timeout.total_seconds()
        self.throttle = throttle or Throttle.for_limits(limits)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def post(self, url: str, body: bytes, now: datetime, only_200: bool = False,
                   headers: dict[str, Any] | None = None) -> None:
        await self.throttle.wait()
        try:
            async with self.session.post(
                url, data=body, allow_redirects=False,
                headers={"Content-Type": "application/json", **(headers or {})},
            ) as response:
                answer = await response.content.read(ANSWER_CHARS)
                raise_for_status(response.status, response.headers, answer, now, only_200)
        except TimeoutError:
            raise SinkError(f"no answer within {self.timeout:g}s") from None
        except aiohttp.ClientConnectionError as exc:
            raise SinkError(f"connection failed ({type(exc).__name__})") from None
        except aiohttp.ClientError as exc:
            raise SinkError(f"request failed ({type(exc).__name__})") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class WebhookUrlSinkConfig(SinkConfig):
    """Sinks addressed by one incoming-webhook URL (Slack, Mattermost)."""

    webhook_url: SecretStr

    @field_validator("webhook_url")
    @classmethod
    def _usable(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        return required_url(value, info)


class PostingSink:
    """A sink that POSTs JSON over HTTP, paced by its declared limits."""

    limits: ClassVar[Limits]

    def __init__(self, config: Any, throttle: Throttle | None = None):
        self.config = config
        self.http = HttpPoster(config.timeout, self.limits, throttle)

    @property
    def name(self) -> str:
        return str(self.config.name)
