"""An alert sink kind is one file plus one registry line; the config follows from it:
each kind's own keys, a name per sink, errors with their key path, secrets kept out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar, Literal

import pytest

from listener.config import ConfigError, parse_config
from responders.alerts import SINKS, _registry
from responders.alerts.base import SinkConfig
from responders.alerts.slack import SlackSink

SLACK = {"kind": "slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/secret-xyz"}


def test_every_registered_kind_is_an_alert_sink_with_its_own_keys() -> None:
    assert set(SINKS) == {"slack", "mattermost", "webhook", "apprise"}
    config = parse_config({"alerts": [
        SLACK,
        {"kind": "webhook", "name": "ops", "url": "https://ops.example/alerts", "secret": "s",
         "on": ["breached", "spike"], "group_window": "30s"},
        {"kind": "apprise", "url": "json://127.0.0.1:9/notify", "enabled": False},
        {"kind": "mattermost", "webhook_url": "", "enabled": False},
    ]})
    assert [(a.name, a.kind, a.enabled) for a in config.alerts] == [
        ("slack-0", "slack", True), ("ops", "webhook", True),
        ("apprise-2", "apprise", False), ("mattermost-3", "mattermost", False)]
    slack, ops = config.alerts[:2]
    assert slack.on == ["at_risk", "breached"] and slack.group_window == timedelta(seconds=10)
    assert ops.on == ["breached", "spike"] and ops.group_window == timedelta(seconds=30)
    assert "secret-xyz" not in repr(config) + config.model_dump_json()


def test_config_mistakes_in_alerts_name_their_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"alerts": [
            {"kind": "teams", "url": "x"},
            {**SLACK, "on": ["lunch"]},
            {"kind": "slack", "webhook_url": "ftp://hooks.example/secret-abc"},
            {"kind": "webhook", "url": "https://ops.example/alerts", "secret": ""},
            {"kind": "apprise", "url": "nope://secret-def"},
            {**SLACK, "channel": "#ops"},
        ]})
    problems = dict(caught.value.problems)
    assert problems["alerts[0].kind"].startswith("unknown alert sink kind 'teams'; this "
                                                 "version knows slack, mattermost")
    assert "alerts[1].on[0]" in problems
    assert problems["alerts[2].webhook_url"] == "expected a http:// or https:// URL"
    assert problems["alerts[3].secret"].startswith("required while the sink is enabled")
    assert problems["alerts[4].url"].startswith("not an Apprise URL")
    assert problems["alerts[5].channel"] == "Extra inputs are not permitted"
    assert "secret-" not in str(caught.value)


def test_two_sinks_cannot_share_a_name() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"alerts": [{**SLACK, "name": "team"}, {**SLACK, "name": "team"},
                                 SLACK, {**SLACK, "name": "slack-2"}]})
    assert caught.value.problems == [("alerts[1].name", "name 'team' is used twice"),
                                     ("alerts[3].name", "name 'slack-2' is used twice")]


class PagerConfig(SinkConfig):
    kind: Literal["pager"]


class PagerSink:
    kind: ClassVar[str] = "pager"
    Config: ClassVar[Any] = PagerConfig


def test_the_registry_refuses_two_sinks_of_one_kind_or_a_mismatched_model() -> None:
    assert set(_registry((SlackSink, PagerSink))) == {"slack", "pager"}
    with pytest.raises(RuntimeError, match="two alert sinks claim kind 'slack'"):
        _registry((SlackSink, SlackSink))

    class Mismatched(PagerSink):
        kind: ClassVar[str] = "beeper"

    with pytest.raises(RuntimeError, match=r"Mismatched.Config.kind must be Literal\['beeper'\]"):
        _registry((Mismatched,))
