"""A source kind is one file plus one registry line: the config follows from the registry."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pytest

from connectors import CONNECTORS, _registry
from connectors.base import PolledSourceConfig
from connectors.rss import RssConnector
from listener.config import ConfigError, parse_config


class FeedOfFeeds(PolledSourceConfig):
    default_channel: ClassVar[str | None] = "fof"
    kind: Literal["fof"]
    url: str


class FeedOfFeedsConnector:
    kind: ClassVar[str] = "fof"
    Config: ClassVar[Any] = FeedOfFeeds
    polled: ClassVar[bool] = True


def test_every_registered_kind_is_a_valid_source_kind_with_its_own_keys() -> None:
    assert set(CONNECTORS) == {"twitter", "reddit", "mastodon", "discourse", "imap", "rss",
                               "html", "webhook", "replay", "google_play", "app_store",
                               "instagram", "facebook", "youtube"}
    config = parse_config({"sources": [
        {"id": "news", "kind": "rss", "url": "https://example.com/feed.xml"},
        {"id": "masto", "kind": "mastodon", "hashtag": "acme", "channel": "fediverse"},
    ]})
    assert [(s.kind, s.channel) for s in config.sources] == [("rss", "rss"),
                                                              ("mastodon", "fediverse")]
    with pytest.raises(ConfigError) as caught:
        parse_config({"sources": [{"id": "news", "kind": "rss", "hashtag": "acme",
                                   "url": "https://example.com/feed.xml"}]})
    assert caught.value.problems == [("sources[0].hashtag", "Extra inputs are not permitted")]


def test_two_connectors_cannot_claim_one_kind() -> None:
    assert set(_registry((RssConnector, FeedOfFeedsConnector))) == {"rss", "fof"}
    with pytest.raises(RuntimeError, match="two connectors claim kind 'rss'"):
        _registry((RssConnector, RssConnector))


def test_a_config_model_must_carry_its_connectors_kind() -> None:
    class Mismatched(FeedOfFeedsConnector):
        kind: ClassVar[str] = "other"

    with pytest.raises(RuntimeError, match=r"Config\.kind must be Literal"):
        _registry((Mismatched,))
