"""Registry: config `kind` → alert sink class. Adding a sink kind is one file and one line
here; the class carries its own config model (`Config`), from which `listener.config`
builds the alerts' discriminated union."""

from __future__ import annotations

from typing import Any

from listener.kinds import kind_registry
from responders.alerts.apprise import AppriseSink
from responders.alerts.mattermost import MattermostSink
from responders.alerts.slack import SlackSink
from responders.alerts.webhook import WebhookSink

BUILT_IN: tuple[type[Any], ...] = (SlackSink, MattermostSink, WebhookSink, AppriseSink)


def _registry(classes: tuple[type[Any], ...]) -> dict[str, type[Any]]:
    return kind_registry(classes, "alert sink")


SINKS: dict[str, type[Any]] = _registry(BUILT_IN)


def build_sink(config: Any) -> Any:
    """Make the sink for a validated `alerts[]` entry."""
    return SINKS[config.kind](config)
