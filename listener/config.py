"""The validated configuration: one pydantic model per section, loaded from YAML.

Errors are collected, not raised one at a time, so `listener check-config` can show
every problem with its key path (`sources[2].url: ...`). Secrets are `SecretStr`,
which keeps them out of reprs, logs and error messages.
"""

from __future__ import annotations

import functools
import operator
import os
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors import CONNECTORS
from connectors.webhook import same_secret
from listener.brands import OURS
from listener.config_fields import (
    AtRisk,
    Duration,
    Section,
    StrList,
    TimeOfDay,
    TimeZoneName,
)
from listener.shifts import Shift
from responders.alerts import SINKS
from sla.calendar import BusinessCalendar
from sla.durations import parse_duration, parse_hours_range

ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(Exception):
    """Every problem found in a config file, each as (key path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{path}: {message}" for path, message in problems))


def _first_response(value: Any) -> Any:
    if value == "same_day" or not isinstance(value, str):
        return value
    return parse_duration(value)


FirstResponse = Annotated[str | timedelta, BeforeValidator(_first_response)]


def _one_or_many(value: Any) -> Any:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


# `at_risk: 1h` and `at_risk: [3h, 1h]` alike; an entry's error names it: `at_risk[1]`.
AtRiskLevels = Annotated[list[AtRisk], BeforeValidator(_one_or_many)]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


class DatabaseConfig(Section):
    url: str = "sqlite+aiosqlite:///data/listener.db"

    @field_validator("url")
    @classmethod
    def _known_driver(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db"
            )
        return url


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    api_tokens: list[SecretStr] = []
    public_url: str | None = None
    # Signs and encrypts the dashboard's session cookies; at least 32 characters. Unset:
    # a random key per start, so everyone signs in again after a restart.
    session_key: SecretStr | None = None
    session_max_age: PositiveDuration = timedelta(hours=12)
    cookie_secure: bool = False  # true behind HTTPS: the cookie is never sent over plain HTTP
    login_attempts: int = Field(5, ge=1)  # failed sign-ins per name or address ...
    login_lockout: PositiveDuration = timedelta(minutes=15)  # ... before a pause this long

    @field_validator("session_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and not key.get_secret_value():
            return None  # an unset ${LISTENER_SESSION_KEY:-}
        if key is not None and len(key.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return key

    def token_allowed(self, token: str) -> bool:
        """An empty configured token never matches (an unset env var must not open the API)."""
        return bool(token) and any(
            t.get_secret_value() and same_secret(t.get_secret_value(), token)
            for t in self.api_tokens
        )


class HolidaysConfig(Section):
    country: str

    @field_validator("country")
    @classmethod
    def _known_country(cls, country: str) -> str:
        """`serve` would refuse an unknown code at start-up; say so at check-config time."""
        BusinessCalendar(ZoneInfo("UTC"), {}, holiday_country=country)
        return country


def _hours_range(text: str) -> str:
    parse_hours_range(text)
    return text


# Validated per value so an error names the day: `calendar.hours.mon: ...`.
HoursRange = Annotated[str, AfterValidator(_hours_range)]


class CalendarConfig(Section):
    hours: dict[str, HoursRange] = {day: "09:00-18:00" for day in WEEKDAY_KEYS[:5]}
    holidays: HolidaysConfig | None = None
    closed: list[date] = []
    open: list[date] = []

    @field_validator("hours")
    @classmethod
    def _valid_days(cls, hours: dict[str, str]) -> dict[str, str]:
        for day in hours:
            if day not in WEEKDAY_KEYS:
                raise ValueError(f"unknown day {day!r}; use {', '.join(WEEKDAY_KEYS)}")
        return hours

    @field_validator("open")
    @classmethod
    def _not_also_closed(cls, days: list[date], info: ValidationInfo) -> list[date]:
        both = sorted(set(days) & set(info.data.get("closed") or ()))
        if both:
            raise ValueError(f"{', '.join(map(str, both))} is also in calendar.closed; "
                             "a date is either open or closed")
        return days


SourceConfig = Annotated[
    functools.reduce(operator.or_, (c.Config for c in CONNECTORS.values())),
    Field(discriminator="kind"),
]


class AgentConfig(Section):
    id: str = Field(min_length=1)
    name: str = ""
    channels: StrList
    languages: StrList = []
    max_open: int = Field(25, ge=0)
    shift: str | None = None
    slack: str | None = None
    teams: StrList = []

    @field_validator("shift")
    @classmethod
    def _valid_shift(cls, shift: str | None) -> str | None:
        """Checks the syntax only; `serve` reads it in the config's time zone."""
        if shift is not None:
            Shift.parse(shift, ZoneInfo("UTC"))
        return shift


class RuleMatch(Section):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    channels: StrList = Field([], alias="channel")
    languages: StrList = Field([], alias="lang")
    sources: StrList = Field([], alias="source")
    segments: StrList = Field([], alias="segment")
    priorities: StrList = Field([], alias="priority")

    @model_validator(mode="before")
    @classmethod
    def _plural_keys(cls, data: Any) -> Any:
        """Accept both `channel: x` and `channels: [x]` spellings."""
        if not isinstance(data, dict):
            return data
        singular = {
            "channels": "channel",
            "languages": "lang",
            "sources": "source",
            "segments": "segment",
            "priorities": "priority",
        }
        return {singular.get(k, k): v for k, v in data.items()}


class RoutingRuleConfig(Section):
    match: RuleMatch = RuleMatch()
    agents: StrList


class RoutingConfig(Section):
    strategy: Literal["least_loaded", "round_robin"] = "least_loaded"
    rules: list[RoutingRuleConfig] = []
    handoff: Literal["reassign", "keep"] = "reassign"
    affinity_window: PositiveDuration = timedelta(hours=24)


class PolicyConfig(Section):
    name: str
    match: RuleMatch = RuleMatch()
    first_response: FirstResponse = "same_day"
    cutoff: TimeOfDay | None = None
    at_risk: AtRiskLevels = []
    escalate_after: PositiveDuration | None = None
    escalate_to: StrList = []
    next_response: PositiveDuration | None = None

    @field_validator("escalate_to")
    @classmethod
    def _needs_escalate_after(cls, names: list[str], info: ValidationInfo) -> list[str]:
        """Names without a time would never be told; `cross_checks` checks the names."""
        if names and info.data.get("escalate_after") is None and "escalate_after" in info.data:
            raise ValueError("set escalate_after too: when to escalate past the deadline")
        return names


class SlaConfig(Section):
    policies: list[PolicyConfig] = []
    next_response_window: PositiveDuration = timedelta(hours=24)


def _at_most_a_day(value: timedelta) -> timedelta:
    if value > timedelta(days=1):
        raise ValueError("must be at most 1d: it is compared with the same hours of past weeks")
    return value


class SpikeConfig(Section):
    """A crisis alert: far more negative mentions than usual at this hour of the week.
    `sentiment` runs from -1 (angry) to 1 (pleased); below `sentiment_below` is negative."""

    enabled: bool = True
    window: Annotated[PositiveDuration, AfterValidator(_at_most_a_day)] = timedelta(hours=1)
    ratio: float = Field(3.0, gt=1)
    min_count: int = Field(10, ge=1)
    weeks: int = Field(4, ge=1, le=52)
    sentiment_below: float = Field(-0.25, gt=-1, le=1)
    # The same rule for each competitor's negative mentions: alert kind `competitor_spike`.
    competitors: bool = False


class NoiseConfig(Section):
    """Mentions stored as `ignored` (never queued): retweets, posts containing a
    `blocklist` word or phrase (case-insensitive, Turkish-aware), and the same text from
    the same author more than `repeat_limit` times within `repeat_window`."""

    blocklist: StrList = []
    repeat_window: PositiveDuration = timedelta(hours=1)
    repeat_limit: int = Field(3, ge=1)


class CustomersConfig(Section):
    """How customers are recognised: phone numbers written without a country code are
    read in `default_region` (ISO 3166 code) before comparing them. `segment_priority`
    raises a segment's mentions to at least that priority at ingest (never lowers it)."""

    default_region: str = Field("TR", pattern="^[A-Za-z]{2}$")
    segment_priority: dict[str, Literal["urgent", "high", "normal", "low"]] = {
        "vip": "high", "at_risk": "high"}


class RepliesConfig(Section):
    """Reply drafts: `brand_name` signs them; `length_limits` (channel or source kind →
    characters, null for none) replaces the built-in limits of `responders.limits`."""

    brand_name: str = Field("Customer Care", min_length=1, max_length=100)
    length_limits: dict[
        Annotated[str, Field(pattern=r"^[a-z0-9_.-]{1,30}$")],
        Annotated[int, Field(ge=1)] | None,
    ] = {}


def _keyword(text: str) -> str:
    if not text.strip():
        raise ValueError("a keyword cannot be empty")
    return text


Keyword = Annotated[str, AfterValidator(_keyword)]
KeywordList = Annotated[list[Keyword], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class CompetitorConfig(Section):
    """A competitor watched for share of voice: its mentions are stored, enriched and
    counted under `name`, never queued. `handles` (channel or source kind → accounts) and
    `keywords` recognise it in a mention's text (see `listener.brands`)."""

    name: str = Field(min_length=1, max_length=50, pattern=r"^\w([\w .&+'-]*\w)?$")
    handles: dict[str, StrList] = {}
    keywords: KeywordList = []


# The lists whose entries are picked by `kind`, and the registry that knows the kinds.
UNION_KINDS: dict[str, dict[str, Any]] = {"sources": CONNECTORS, "alerts": SINKS}

# Each sink kind declares its own model (`responders/alerts/<kind>.py`); keys every sink
# has (name, enabled, on, group_window, timeout) are in `responders.alerts.base.SinkConfig`.
AlertConfig = Annotated[
    functools.reduce(operator.or_, (s.Config for s in SINKS.values())),
    Field(discriminator="kind"),
]


class Config(Section):
    timezone: TimeZoneName = "UTC"
    database: DatabaseConfig = DatabaseConfig()
    server: ServerConfig = ServerConfig()
    calendar: CalendarConfig = CalendarConfig()
    sources: list[SourceConfig] = []
    brand_accounts: dict[str, StrList] = {}
    brand_keywords: KeywordList = []  # words that name our brand in a mention's text
    competitors: list[CompetitorConfig] = []
    agents: list[AgentConfig] = []
    routing: RoutingConfig = RoutingConfig()
    sla: SlaConfig = SlaConfig()
    alerts: list[AlertConfig] = []
    spike: SpikeConfig = SpikeConfig()
    noise: NoiseConfig = NoiseConfig()
    customers: CustomersConfig = CustomersConfig()
    replies: RepliesConfig = RepliesConfig()

    @model_validator(mode="before")
    @classmethod
    def _name_alert_sinks(cls, data: Any) -> Any:
        """An unnamed sink is `<kind>-<index>` (`slack-0`). Outbox rows and metrics carry
        the name: set one to keep them attached when the list is reordered."""
        alerts = data.get("alerts") if isinstance(data, dict) else None
        if not isinstance(alerts, list):
            return data
        named = [{**a, "name": f"{a.get('kind')}-{i}"}
                 if isinstance(a, dict) and not a.get("name") else a
                 for i, a in enumerate(alerts)]
        return {**data, "alerts": named}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source(self, source_id: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.id == source_id), None)


def interpolate(node: Any, path: str, problems: list[tuple[str, str]],
                used: set[str] | None = None) -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string of the parsed YAML tree.

    Done on the tree rather than the raw text so an env value can never inject YAML.
    The values taken from the environment are collected in `used`, so error messages
    can mask them (a secret put in the wrong field must not be echoed back).
    """
    used = used if used is not None else set()
    if isinstance(node, dict):
        return {k: interpolate(v, f"{path}.{k}" if path else str(k), problems, used)
                for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, f"{path}[{i}]", problems, used) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                problems.append((path, f"environment variable {name} is not set"))
                return ""
            return default
        used.add(value)
        return value

    return ENV_PATTERN.sub(replace, node)


def format_loc(loc: tuple[Any, ...]) -> str:
    """('sources', 2, 'html', 'url') -> 'sources[2].url' (drops the union tag pydantic adds)."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif (i == 2 and item in UNION_KINDS.get(loc[0], ())) or item.startswith(
            "function-"
        ):
            continue
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def parse_config(data: Any) -> Config:
    problems: list[tuple[str, str]] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([("(top level)", "the config must be a YAML mapping of sections")])
    from_env: set[str] = set()
    data = interpolate(data, "", problems, from_env)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        unset = {path for path, _ in problems}  # an unset ${VAR} explains its key's error
        for error in exc.errors(include_input=False, include_url=False):
            message = _mask(error["msg"].removeprefix("Value error, "), from_env)
            key = format_loc(tuple(error["loc"]))
            if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                key, message = f"{key}.kind", _kind_message(error)
            if key not in unset:
                problems.append((key, message))
        raise ConfigError(_unique(problems)) from None
    problems += cross_checks(config)
    if problems:
        raise ConfigError(_unique(problems))
    return config


def _kind_message(error: Any) -> str:
    section = error["loc"][0] if error.get("loc") else "sources"
    known = ", ".join(UNION_KINDS.get(section, CONNECTORS))
    noun = "alert sink" if section == "alerts" else "source"
    tag = (error.get("ctx") or {}).get("tag")
    if tag is None:
        return f"every {noun} needs a kind: one of {known}"
    return f"unknown {noun} kind {tag!r}; this version knows {known}"


def _mask(message: str, secrets: set[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        if len(value) >= 3:
            message = message.replace(value, "***")
    return message


def cross_checks(config: Config) -> list[tuple[str, str]]:
    """Checks that span sections: unique ids, rules that name real agents or teams."""
    problems = []
    for section, items in (("sources", config.sources), ("agents", config.agents)):
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item.id in seen:
                problems.append((f"{section}[{index}].id", f"id {item.id!r} is used twice"))
            seen.add(item.id)
    names: set[str] = set()
    for index, alert in enumerate(config.alerts):
        if alert.name in names:
            problems.append((f"alerts[{index}].name", f"name {alert.name!r} is used twice"))
        names.add(alert.name)
    problems += _brand_checks(config)
    known = {a.id for a in config.agents} | {t for a in config.agents for t in a.teams}
    for index, rule in enumerate(config.routing.rules):
        for name in rule.agents:
            if name not in known:
                problems.append((f"routing.rules[{index}].agents",
                                 f"{name!r} is neither an agent id nor a team of any agent"))
    for index, policy in enumerate(config.sla.policies):
        for name in policy.escalate_to:
            if name not in known:
                problems.append((f"sla.policies[{index}].escalate_to",
                                 f"{name!r} is neither an agent id nor a team of any agent"))
    return problems


def _brand_checks(config: Config) -> list[tuple[str, str]]:
    """Competitor names are unique and not `ours`; a source's `brand` names one of them."""
    problems = []
    names: set[str] = set()
    for index, competitor in enumerate(config.competitors):
        folded = competitor.name.casefold()
        if folded == OURS:
            problems.append((f"competitors[{index}].name",
                             f"{OURS!r} is our own brand; give the competitor its own name"))
        elif folded in names:
            problems.append((f"competitors[{index}].name",
                             f"name {competitor.name!r} is used twice"))
        names.add(folded)
    known = [OURS, *(c.name for c in config.competitors)]
    for index, source in enumerate(config.sources):
        if source.brand is not None and source.brand not in known:
            problems.append((f"sources[{index}].brand",
                             f"{source.brand!r} is neither {OURS!r} nor a competitors[].name "
                             f"({', '.join(map(repr, known))})"))
    return problems


def _unique(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(problems))


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.1 reads `on:`/`off:`/`yes`/`no` as booleans, which breaks `alerts[].on`;
    only true/false are booleans here."""


_YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([(str(path), f"cannot read the config file: {exc.strerror}")]) from None
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError([(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    return parse_config(data)
