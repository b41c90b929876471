"""`listener check-config` and the config loader as an operator meets them."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from listener.config import Config, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config.example.yaml"


def check_config(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry, with only the given variables added to a clean env."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("X_", "NOT_SET", "SLACK"))}
    return subprocess.run(
        [sys.executable, "-m", "listener", "check-config", str(path)],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_example_config_is_valid() -> None:
    result = check_config(EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


BROKEN = """\
timezone: Mars/Olympus
colour: blue
calendar:
  hours: {mon: "09:00-25:00"}
  holidays: {country: XX}
sources:
  - {id: demo, kind: webhook, secret: fine-secret}
  - {id: x-brand, kind: twitter, query: acme, bearer_token: "${X_BEARER_TOKEN}",
     interval: 5 minutes}
  - {id: hook, kind: webhook, secret: "${NOT_SET_VAR}"}
agents:
  - {id: ayse, channels: [twitter], shift: "someday 9-5"}
  - {id: john, channels: [web], shift: "mon-fri 09:00-18:00", max_open: -1}
routing:
  rules:
    - {match: {colour: red}, agents: [ayse]}
sla:
  policies:
    - {name: p, first_response: soon, cutoff: "16:00", at_risk: 1h}
alerts:
  - {kind: slack, webhook_url: "${SLACK_WEBHOOK_URL:-}", on: [breached, lunch]}
"""


def test_check_config_lists_every_error_with_its_key_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    result = check_config(path, X_BEARER_TOKEN="supersecret-123")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    expected = {
        "timezone:": "Mars/Olympus",
        "colour:": "not permitted",
        "calendar.hours.mon:": "25:00",
        "calendar.holidays.country:": "XX",
        "sources[1].interval:": "5 minutes",
        "sources[2].secret:": "NOT_SET_VAR",
        "agents[0].shift:": "someday",
        "agents[1].max_open:": "0",
        "routing.rules[0].match.colour:": "not permitted",
        "sla.policies[0].first_response:": "soon",
        "alerts[0].on[1]:": "at_risk",
        "alerts[0].webhook_url:": "required while the sink is enabled",
    }
    for key, detail in expected.items():
        found = [line for line in lines if line.strip().startswith(key)]
        assert found, f"no error reported for {key}:\n{result.stderr}"
        assert any(detail in line for line in found), found
    # One line per problem: an unset ${VAR} is not reported a second time as an empty secret.
    assert f"has {len(expected)} problem(s)" in result.stderr
    # Nothing valid is flagged: the first webhook source and the second agent's shift are fine.
    assert not any(line.strip().startswith(("sources[0]", "agents[1].shift")) for line in lines)
    assert "supersecret-123" not in result.stdout + result.stderr


def test_secrets_are_never_printed(tmp_path: Path) -> None:
    """A secret sits in a source that has another error, and in every secret-typed field."""
    path = tmp_path / "leaky.yaml"
    path.write_text(
        """\
server: {api_tokens: ["${X_API_TOKEN}"], port: 99999}
sources:
  - {id: x-brand, kind: twitter, query: acme, bearer_token: "${X_BEARER_TOKEN}",
     interval: 5 minutes, colour: red}
  - {id: hook, kind: webhook, secret: "${X_HOOK_SECRET}", enabled: maybe}
alerts:
  - {kind: slack, webhook_url: "${X_SLACK_URL}", on: [nope]}
"""
    )
    secrets = {
        "X_BEARER_TOKEN": "supersecret-123",
        "X_API_TOKEN": "api-token-456",
        "X_HOOK_SECRET": "hook-secret-789",
        "X_SLACK_URL": "https://hooks.slack.test/T000/B000/slack-secret-000",
    }
    result = check_config(path, **secrets)
    assert result.returncode == 2
    assert "sources[0].interval:" in result.stderr
    assert "sources[0].colour:" in result.stderr
    assert "sources[1].enabled:" in result.stderr
    assert "alerts[0].on[0]:" in result.stderr
    assert "server.port:" in result.stderr
    output = result.stdout + result.stderr
    for value in secrets.values():
        assert value not in output
    assert "slack-secret" not in output


def test_a_loaded_config_keeps_its_secrets_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", "supersecret-123")
    config = parse_config(
        {
            "sources": [
                {
                    "id": "x-brand",
                    "kind": "twitter",
                    "query": "acme",
                    "bearer_token": "${X_BEARER_TOKEN}",
                }
            ]
        }
    )
    assert "supersecret-123" not in repr(config) + str(config) + config.model_dump_json()
    assert config.sources[0].bearer_token.get_secret_value() == "supersecret-123"


def _alert_url(data: dict[str, Any]) -> str:
    config = parse_config(data)
    return config.alerts[0].webhook_url.get_secret_value()


def _with_url(url: str) -> dict[str, Any]:
    return {"alerts": [{"kind": "slack", "webhook_url": url, "enabled": False}]}


def test_env_variables_are_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_HOST", "hooks.example.com")
    monkeypatch.setenv("LISTENER_PORT", "9090")
    assert _alert_url(_with_url("https://${HOOK_HOST}/x")) == "https://hooks.example.com/x"
    config = parse_config({"server": {"port": "${LISTENER_PORT}"}})
    assert config.server.port == 9090
    # an env value is data, never YAML or another ${...}
    monkeypatch.setenv("HOOK_HOST", "${OTHER}: [1]")
    assert _alert_url(_with_url("${HOOK_HOST}")) == "${OTHER}: [1]"


def test_env_default_is_used_when_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_HOST", raising=False)
    assert _alert_url(_with_url("https://${HOOK_HOST:-fallback.test}/x")) == (
        "https://fallback.test/x"
    )
    monkeypatch.setenv("HOOK_HOST", "")
    assert _alert_url(_with_url("https://${HOOK_HOST:-fallback.test}/x")) == (
        "https://fallback.test/x"
    )
    monkeypatch.setenv("HOOK_HOST", "real.test")
    assert _alert_url(_with_url("https://${HOOK_HOST:-fallback.test}/x")) == "https://real.test/x"
    monkeypatch.delenv("LISTENER_API_TOKEN", raising=False)
    config = parse_config({"server": {"api_tokens": ["${LISTENER_API_TOKEN:-}"]}})
    assert not config.server.token_allowed("")


def test_unset_variable_without_default_names_key_and_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOT_SET_VAR", raising=False)
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "sources": [
                    {"id": "demo", "kind": "webhook", "secret": "ok"},
                    {"id": "hook", "kind": "webhook", "secret": "${NOT_SET_VAR}"},
                ]
            }
        )
    assert caught.value.problems == [
        ("sources[1].secret", "environment variable NOT_SET_VAR is not set")
    ]


def test_yaml_on_key_stays_a_string_key(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "alerts:\n"
        "  - kind: slack\n"
        "    webhook_url: https://hooks.example.com/x\n"
        "    on: [breached, spike]\n"
        "    enabled: false\n"
    )
    config = load_config(path)
    assert config.alerts[0].on == ["breached", "spike"]
    assert config.alerts[0].enabled is False


# -- every config key is documented in config.example.yaml (Datasette-style) ----------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field annotation (through list, dict, |, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _kind_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal:
        return None
    return typing.get_args(field.annotation)[0]


def _dicts(values: list[Any]) -> list[dict[str, Any]]:
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return [v for v in flat if isinstance(v, dict)]


def _collect(
    model: type[BaseModel],
    nodes: list[dict[str, Any]],
    seen: dict[type[BaseModel], set[str]],
) -> None:
    """Walk a model and the example's mappings at the same place together.

    `seen[model]` gets every key the example writes anywhere that model is used, so
    a key counts only where it means something (`id` in an HTML selector is not `id`
    of a source), and each source kind is checked against its own entries.
    """
    keys = seen.setdefault(model, set())
    for node in nodes:
        keys.update(str(k) for k in node)
    for name, field in model.model_fields.items():
        spellings = {name, field.alias} - {None}
        children = [node[s] for node in nodes for s in spellings if s in node]
        submodels = _models_in(field.annotation)
        if len(submodels) == 1:
            _collect(submodels[0], _dicts(children), seen)
        elif submodels:  # a discriminated union: route each entry by its `kind`
            for sub in submodels:
                kind = _kind_of(sub)
                assert kind is not None, f"{model.__name__}.{name}: union without a kind"
                entries = [d for d in _dicts(children) if d.get("kind") == kind]
                _collect(sub, entries, seen)


def _declared_by(model: type[BaseModel], name: str) -> type[BaseModel]:
    """The most basic model that has the field (`interval` belongs to `PolledSource`)."""
    bases = [c for c in model.__mro__ if isinstance(c, type) and issubclass(c, BaseModel)]
    return [c for c in bases if name in c.model_fields][-1]


def _undocumented(seen: dict[type[BaseModel], set[str]]) -> list[str]:
    """Fields no example entry spells out; a field shared by every polled source kind
    needs to appear once, in an entry of any of them."""
    missing = []
    for model in seen:
        for name, field in model.model_fields.items():
            owner = _declared_by(model, name)
            keys = set().union(*(k for m, k in seen.items() if issubclass(m, owner)))
            if not ({name, field.alias} - {None}) & keys:
                missing.append(f"{model.__name__}.{name}")
    return missing


def _example() -> Any:
    """Parsed with the loader the product uses, so `on:` is read the way `listener` reads it."""
    from listener import config as config_module

    with EXAMPLE.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=config_module._YamlLoader)


def test_every_config_key_appears_in_the_example() -> None:
    seen: dict[type[BaseModel], set[str]] = {}
    _collect(Config, [_example()], seen)
    source_kinds = _models_in(Config.model_fields["sources"].annotation)
    assert len(source_kinds) >= 8
    assert all(seen.get(kind) for kind in source_kinds), "a source kind has no example entry"
    sink_kinds = _models_in(Config.model_fields["alerts"].annotation)
    assert len(sink_kinds) >= 4
    assert all(seen.get(kind) for kind in sink_kinds), "an alert sink kind has no example entry"
    names = {m.__name__ for m in seen}
    assert {
        "ServerConfig",
        "CalendarConfig",
        "HolidaysConfig",
        "AgentConfig",
        "RoutingRuleConfig",
        "RuleMatch",
        "PolicyConfig",
        "SlackSinkConfig",
        "HtmlSelectors",
    } <= names
    assert _undocumented(seen) == [], "add these keys to config.example.yaml"

    # The walk is not vacuous: drop two documented keys and exactly those are reported.
    example = _example()
    for source in example["sources"]:
        if source["kind"] == "html":
            del source["selectors"]["link"]
    del example["server"]["public_url"]
    seen = {}
    _collect(Config, [example], seen)
    assert sorted(_undocumented(seen)) == ["HtmlSelectors.link", "ServerConfig.public_url"]


def test_an_env_secret_put_in_the_wrong_field_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", "tok-9f8e7d6c")
    with pytest.raises(ConfigError) as caught:
        parse_config({"sources": [{"id": "r", "kind": "replay", "path": "x.jsonl",
                                   "interval": "${X_BEARER_TOKEN}"}]})
    [(key, message)] = caught.value.problems
    assert key == "sources[0].interval"
    assert "tok-9f8e7d6c" not in message and "***" in message


def test_cross_section_mistakes_are_reported_with_their_key_path() -> None:
    agent = {"channels": ["twitter"], "teams": ["social"]}
    with pytest.raises(ConfigError) as caught:
        parse_config({
            "agents": [{"id": "ayse", **agent}, {"id": "ayse", **agent}],
            "sources": [{"id": "w", "kind": "webhook", "secret": "s"},
                        {"id": "w", "kind": "webhook", "secret": "s"}],
            "routing": {"rules": [{"match": {"segment": "vip"}, "agents": ["social", "lead"]}]},
        })
    assert sorted(caught.value.problems) == [
        ("agents[1].id", "id 'ayse' is used twice"),
        ("routing.rules[0].agents", "'lead' is neither an agent id nor a team of any agent"),
        ("sources[1].id", "id 'w' is used twice"),
    ]


def test_check_config_catches_what_only_the_connectors_know(tmp_path: Path) -> None:
    """An X query that is fine alone but too long once the brand's replies are added."""
    query = "(" + " OR ".join(f"kargo{n:03d}" for n in range(40)) + ") -is:retweet"
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump({
        "sources": [{"id": "x-brand", "kind": "twitter", "query": query,
                     "bearer_token": "${X_BEARER_TOKEN}"}],
        "brand_accounts": {"twitter": ["acme"]}}))
    result = check_config(path, X_BEARER_TOKEN="tok-abc-123")
    assert result.returncode == 2
    assert "sources[0]: source 'x-brand': query with the brand's replies" in result.stderr
    assert "tok-abc-123" not in result.stdout + result.stderr
