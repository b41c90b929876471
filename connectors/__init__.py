"""Registry: config `kind` → connector class. Adding a source kind is one file and one line
here; the class carries its own config model (`Config`), from which `listener.config`
builds the sources' discriminated union."""

from __future__ import annotations

import importlib
from typing import Any

from listener.kinds import kind_registry

BUILT_IN_MODULES = (
    ("connectors.twitter", "TwitterConnector"),
    ("connectors.reddit", "RedditConnector"),
    ("connectors.mastodon", "MastodonConnector"),
    ("connectors.discourse", "DiscourseConnector"),
    ("connectors.imap", "ImapConnector"),
    ("connectors.rss", "RssConnector"),
    ("connectors.html", "HtmlConnector"),
    ("connectors.webhook", "WebhookConnector"),
    ("connectors.replay", "ReplayConnector"),
    ("connectors.youtube", "YoutubeConnector"),
    ("connectors.instagram", "InstagramConnector"),
    ("connectors.facebook", "FacebookConnector"),
    ("connectors.google_play", "GooglePlayConnector"),
    ("connectors.app_store", "AppStoreConnector"),
)
"""Where each built-in connector lives. The registry imports them on first use, not when
any `connectors.*` module is imported: the ingest worker process needs only the webhook
line parser, and importing every connector (HTTP clients, the database layer) made its
start a second slower."""


def _registry(classes: tuple[type[Any], ...]) -> dict[str, type[Any]]:
    return kind_registry(classes, "connector")


def __getattr__(name: str) -> Any:
    """`BUILT_IN` (the connector classes) and `CONNECTORS` (config `kind` → class), made
    on first use and then kept as ordinary module attributes."""
    if name == "BUILT_IN":
        value: Any = tuple(getattr(importlib.import_module(module), cls)
                           for module, cls in BUILT_IN_MODULES)
    elif name == "CONNECTORS":
        value = _registry(__getattr__("BUILT_IN"))
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def build_connector(source: Any) -> Any:
    """Make the connector for a validated source config."""
    registry = globals().get("CONNECTORS") or __getattr__("CONNECTORS")
    return registry[source.kind].from_config(source)
