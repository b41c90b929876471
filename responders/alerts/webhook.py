"""A generic JSON webhook for other systems: the alert's payload plus `time_left_seconds`
(negative when overdue) and its `dedupe_key`, signed like Listener's own inbound webhooks:
`X-Listener-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with secret>`.

Several alerts due together go in one POST: `{"kind": "group", "count": n, "alerts": [...]}`
with every alert in full (machines want them all), at most 100 a message. Delivery is
at-least-once: a receiver that must not act twice dedupes on `dedupe_key`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import SecretStr, ValidationInfo, field_validator

from connectors.webhook import SIGNATURE_HEADER, sign
from responders.alerts import message
from responders.alerts.base import Alert, Limits, SinkConfig, required_url
from responders.alerts.http import PostingSink


class WebhookSinkConfig(SinkConfig):
    kind: Literal["webhook"]
    url: SecretStr
    secret: SecretStr

    @field_validator("url")
    @classmethod
    def _usable(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        return required_url(value, info)

    @field_validator("secret")
    @classmethod
    def _secret_when_enabled(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("enabled", True) and not value.get_secret_value():
            raise ValueError("required while the sink is enabled: receivers check the "
                             "signature with it")
        return value


def alert_json(alert: Alert, now: datetime) -> dict[str, Any]:
    return {**alert.payload, "dedupe_key": alert.dedupe_key,
            "time_left_seconds": message.time_left_seconds(alert, now)}


class WebhookSink(PostingSink):
    kind: ClassVar[str] = "webhook"
    Config: ClassVar[type[WebhookSinkConfig]] = WebhookSinkConfig
    limits: ClassVar[Limits] = Limits(body_maxlen=1_000_000, private=("url", "secret"),
                                      max_group=100)

    def body(self, alerts: Sequence[Alert], now: datetime) -> dict[str, Any]:
        if len(alerts) == 1:
            return alert_json(alerts[0], now)
        return {"kind": "group", "count": len(alerts),
                "alerts": [alert_json(a, now) for a in alerts]}

    async def deliver(self, alerts: Sequence[Alert], now: datetime) -> None:
        raw = json.dumps(self.body(alerts, now), separators=(",", ":")).encode()
        signature = sign(self.config.secret.get_secret_value(), raw)
        await self.http.post(self.config.url.get_secret_value(), raw, now,
                             headers={SIGNATURE_HEADER: signature})

    async def close(self) -> None:
        await self.http.close()
