"""Registry: config `kind` → alert sink class. Adding a sink kind is one file and one line
here; the class carries its own config model (`Config`), from which `listener.config`
builds the alerts' discriminated union."""

from __future__ import annotations

from typing import Any

from responders.alerts.apprise import AppriseSink
from responders.alerts.mattermost import MattermostSink
from responders.alerts.slack import SlackSink
from responders.alerts.webhook import WebhookSink

BUILT_IN: tuple[type[Any], ...] = (SlackSink, MattermostSink, WebhookSink, AppriseSink)


def _registry(classes: tuple[type[Any], ...]) -> dict[str, type[Any]]:
    """Fails at import on two sinks claiming one kind, or a config model whose `kind`
    literal is not the sink's."""
    registry: dict[str, type[Any]] = {}
    for sink_class in classes:
        kind = sink_class.kind
        if kind in registry:
            raise RuntimeError(f"two alert sinks claim kind {kind!r}")
        literal = sink_class.Config.model_fields["kind"].annotation
        if getattr(literal, "__args__", None) != (kind,):
            raise RuntimeError(f"{sink_class.__name__}.Config.kind must be Literal[{kind!r}]")
        registry[kind] = sink_class
    return registry


SINKS: dict[str, type[Any]] = _registry(BUILT_IN)


def build_sink(config: Any) -> Any:
    """Make the sink for a validated `alerts[]` entry."""
    return SINKS[config.kind](config)
