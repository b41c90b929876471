"""Registry: config `kind` → connector class. Adding a source kind is one file and one line
here; the class carries its own config model (`Config`), from which `listener.config`
builds the sources' discriminated union."""

from __future__ import annotations

from typing import Any

from connectors.app_store import AppStoreConnector
from connectors.discourse import DiscourseConnector
from connectors.facebook import FacebookConnector
from connectors.google_play import GooglePlayConnector
from connectors.html import HtmlConnector
from connectors.imap import ImapConnector
from connectors.instagram import InstagramConnector
from connectors.mastodon import MastodonConnector
from connectors.reddit import RedditConnector
from connectors.replay import ReplayConnector
from connectors.rss import RssConnector
from connectors.twitter import TwitterConnector
from connectors.webhook import WebhookConnector
from connectors.youtube import YoutubeConnector
from listener.kinds import kind_registry

BUILT_IN: tuple[type[Any], ...] = (
    TwitterConnector,
    RedditConnector,
    MastodonConnector,
    DiscourseConnector,
    ImapConnector,
    RssConnector,
    HtmlConnector,
    WebhookConnector,
    ReplayConnector,
    YoutubeConnector,
    InstagramConnector,
    FacebookConnector,
    GooglePlayConnector,
    AppStoreConnector,
)


def _registry(classes: tuple[type[Any], ...]) -> dict[str, type[Any]]:
    return kind_registry(classes, "connector")


CONNECTORS: dict[str, type[Any]] = _registry(BUILT_IN)


def build_connector(source: Any) -> Any:
    """Make the connector for a validated source config."""
    return CONNECTORS[source.kind].from_config(source)
