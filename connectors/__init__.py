"""Registry: config `kind` → connector class. Adding a source kind is one file and one line
here; the class carries its own config model (`Config`), from which `listener.config`
builds the sources' discriminated union."""

from __future__ import annotations

from typing import Any

from connectors.discourse import DiscourseConnector
from connectors.html import HtmlConnector
from connectors.mastodon import MastodonConnector
from connectors.reddit import RedditConnector
from connectors.replay import ReplayConnector
from connectors.rss import RssConnector
from connectors.twitter import TwitterConnector
from connectors.webhook import WebhookConnector

BUILT_IN: tuple[type[Any], ...] = (
    TwitterConnector,
    RedditConnector,
    MastodonConnector,
    DiscourseConnector,
    RssConnector,
    HtmlConnector,
    WebhookConnector,
    ReplayConnector,
)


def _registry(classes: tuple[type[Any], ...]) -> dict[str, type[Any]]:
    """Fails at import on two connectors claiming one kind, or a config model whose
    `kind` literal is not the connector's."""
    registry: dict[str, type[Any]] = {}
    for connector_class in classes:
        kind = connector_class.kind
        if kind in registry:
            raise RuntimeError(f"two connectors claim kind {kind!r}")
        literal = connector_class.Config.model_fields["kind"].annotation
        if getattr(literal, "__args__", None) != (kind,):
            raise RuntimeError(f"{connector_class.__name__}.Config.kind must be Literal[{kind!r}]")
        registry[kind] = connector_class
    return registry


CONNECTORS: dict[str, type[Any]] = _registry(BUILT_IN)


def build_connector(source: Any) -> Any:
    """Make the connector for a validated source config."""
    return CONNECTORS[source.kind].from_config(source)
