"""What the `instagram` and `facebook` sources share: Meta's Graph API and its webhooks.

Graph answers most errors with HTTP 400 and a JSON `error.code`, so the mapping to the
SourceError family reads the code, not the status: 4/17/32/613/80001-80009 are rate
limits (they wait like a 429), 190 is an expired or revoked token (the operator must
act), 10 and 200-299 are missing permissions. Every answer carries usage headers
(`X-App-Usage`, `X-Business-Use-Case-Usage`: percentages of a rolling hour); the source
reads them and slows down before Meta throttles it: at 75% it polls four times less
often, at 95% (or when Meta names a time to regain access) it pauses.

Paging follows `paging.cursors.after` against the configured `base_url` (the host in
`paging.next` is ignored, so a proxy or a test server keeps receiving every call).

Webhooks: Meta signs the raw body in `X-Hub-Signature-256` with the app secret and first
checks the endpoint with a GET handshake answered only when `hub.verify_token` matches.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from connectors.base import (
    AuthFailed,
    RateLimited,
    ReplyingSourceConfig,
    ReplyRefused,
    SourceError,
    secret_value,
)
from connectors.http import Http, Response, retry_after_seconds
from connectors.webhook import same_secret, signature_valid

META_SIGNATURE_HEADER = "X-Hub-Signature-256"
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80001, 80010)})
TOKEN_CODE = 190
PERMISSION_CODES = frozenset({10, *range(200, 300)})
SLOW_AT = 75  # percent of any usage counter: poll less often
PAUSE_AT = 95  # percent: stop until the window has room again
SLOW_FACTOR = 4
PAUSE = timedelta(minutes=30)  # Meta's window is a rolling hour
RATE_LIMIT_WAIT = 600.0  # seconds, when Meta does not say how long
OVERLAP = timedelta(minutes=10)  # re-read this much before the newest item seen


class MetaSource(ReplyingSourceConfig):
    """Keys both Meta kinds take. `app_secret` and `verify_token` are only needed for
    webhooks; without them the source polls."""

    access_token: SecretStr
    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    base_url: str = "https://graph.facebook.com"
    graph_version: str = Field("v21.0", pattern=r"^v\d+\.\d+$")
    max_pages: int = Field(5, ge=1, le=50)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (default "
                             "https://graph.facebook.com)")
        return value.rstrip("/")

    @field_validator("access_token")
    @classmethod
    def _token_when_enabled(cls, token: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("enabled", True) and not token.get_secret_value():
            raise ValueError("an enabled Meta source needs an access_token "
                             "(set it via ${ENV_VAR})")
        return token


# --- usage headers --------------------------------------------------------------------


def _percentages(counters: Any) -> Iterator[tuple[float, float]]:
    """(highest percentage, minutes to regain access) of one usage object."""
    if not isinstance(counters, dict):
        return
    values = [counters.get(k) for k in ("call_count", "total_cputime", "total_time")]
    numbers = [float(v) for v in values if isinstance(v, int | float)
               and not isinstance(v, bool)]
    regain = counters.get("estimated_time_to_regain_access")
    minutes = float(regain) if isinstance(regain, int | float) else 0.0
    yield (max(numbers) if numbers else 0.0), minutes


def _header_json(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return None


@dataclass
class Usage:
    """The last usage Meta reported: the highest percentage across its counters and how
    long Meta says until access is regained (minutes, business use case only)."""

    app: float | None = None
    business: float | None = None
    regain_minutes: float = 0.0
    seen_at: datetime | None = None

    def read(self, headers: Any, now: datetime) -> None:
        app = list(_percentages(_header_json(headers.get("X-App-Usage"))))
        business_header = _header_json(headers.get("X-Business-Use-Case-Usage"))
        business: list[tuple[float, float]] = []
        if isinstance(business_header, dict):
            for entries in business_header.values():
                for entry in entries if isinstance(entries, list) else [entries]:
                    business += _percentages(entry)
        if not app and not business:
            return
        self.app = max((p for p, _ in app), default=None)
        self.business = max((p for p, _ in business), default=None)
        self.regain_minutes = max((m for _, m in business), default=0.0)
        self.seen_at = now

    @property
    def peak(self) -> float:
        return max(self.app or 0.0, self.business or 0.0)

    def pause_until(self, now: datetime) -> datetime | None:
        if self.regain_minutes > 0:
            return now + max(timedelta(minutes=self.regain_minutes), timedelta(minutes=1))
        return now + PAUSE if self.peak >= PAUSE_AT else None

    def interval(self, configured: timedelta) -> timedelta | None:
        return configured * SLOW_FACTOR if self.peak >= SLOW_AT else None

    def status(self) -> dict[str, Any]:
        state = "paused" if self.peak >= PAUSE_AT or self.regain_minutes > 0 else \
            "slowed" if self.peak >= SLOW_AT else "normal"
        return {"app_percent": self.app, "business_percent": self.business,
                "state": state, "regain_minutes": self.regain_minutes or None}


# --- errors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphError:
    code: int | None
    subcode: int | None
    message: str

    @classmethod
    def of(cls, response: Response) -> GraphError:
        try:
            body = json.loads(response.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(None, None, response.body[:200].decode("utf-8", "replace").strip())
        code, subcode = error.get("code"), error.get("error_subcode")
        return cls(code if isinstance(code, int) else None,
                   subcode if isinstance(subcode, int) else None,
                   str(error.get("message") or "")[:300])

    @property
    def rate_limited(self) -> bool:
        return self.code in RATE_LIMIT_CODES

    def describe(self, status: int) -> str:
        code = f" (code {self.code})" if self.code is not None else ""
        return f"HTTP {status}{code}: {self.message}"


def shown(url: str) -> str:
    """A URL without its query, for messages."""
    return url.split("?", 1)[0]


def rate_limit_wait(response: Response, usage: Usage) -> float:
    waited = retry_after_seconds(response.headers)
    if waited is not None:
        return waited
    if usage.regain_minutes > 0:
        return usage.regain_minutes * 60
    return RATE_LIMIT_WAIT


def poll_error(response: Response, usage: Usage, credential: str) -> SourceError:
    error = GraphError.of(response)
    said = error.describe(response.status)
    if error.rate_limited or response.status == 429:
        return RateLimited(f"Meta rate limit from {shown(response.url)}: {said}",
                           rate_limit_wait(response, usage))
    if error.code == TOKEN_CODE:
        return AuthFailed(f"Meta refused the token ({said}); check {credential}: it has "
                          "expired or been revoked, make a new long-lived one")
    if error.code in PERMISSION_CODES or response.status in (401, 403):
        return AuthFailed(f"Meta refused the request ({said}); check {credential} and its "
                          "permissions")
    return SourceError(f"Meta answered {said} for {shown(response.url)}")


def reply_error(response: Response, usage: Usage, credential: str, what: str) -> ReplyRefused:
    error = GraphError.of(response)
    said = error.describe(response.status)
    if error.rate_limited or response.status == 429:
        return ReplyRefused(429, f"{what} refused, Meta rate limit: {said}",
                            rate_limit_wait(response, usage))
    if error.code == TOKEN_CODE or error.code in PERMISSION_CODES:
        return ReplyRefused(401, f"{what} refused ({said}); check {credential}")
    status = response.status if 400 <= response.status < 600 else 502
    return ReplyRefused(status, f"{what} refused: {said}")


# --- the client -----------------------------------------------------------------------


@dataclass
class Page:
    data: list[Any]
    after: str | None


def next_after(paging: Any) -> str | None:
    """The `after` cursor, only when Meta says there is a next page."""
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    if isinstance(after, str) and after:
        return after
    values = parse_qs(urlsplit(str(paging["next"])).query).get("after")
    return values[0] if values else None


@dataclass
class GraphClient:
    """Graph calls for one source: its token, its usage, its error mapping."""

    config: MetaSource
    credential: str = "access_token"
    usage: Usage = field(default_factory=Usage)
    http: Http = field(init=False)

    def __post_init__(self) -> None:
        self.http = Http(self.config.user_agent, self.config.timeout.total_seconds(),
                         max_body=self.config.max_body)

    def url(self, *parts: str) -> str:
        path = "/".join(quote(part, safe="") for part in parts)
        return f"{self.config.base_url}/{self.config.graph_version}/{path}"

    @property
    def _auth(self) -> dict[str, str]:
        """In a header, never the query: URLs end up in error messages and logs."""
        return {"Authorization": f"Bearer {secret_value(self.config.access_token)}"}

    async def get(self, parts: tuple[str, ...], params: dict[str, str],
                  now: datetime) -> dict[str, Any]:
        response = await self.http.request("GET", self.url(*parts), params=params,
                                           headers=self._auth)
        self.usage.read(response.headers, now)
        if not 200 <= response.status < 300:
            raise poll_error(response, self.usage, self.credential)
        document = response.json()
        if not isinstance(document, dict):
            raise SourceError(f"expected a JSON object from {shown(response.url)}")
        return document

    async def pages(self, parts: tuple[str, ...], params: dict[str, str], now: datetime,
                    max_pages: int) -> AsyncIterator[Page]:
        """Up to `max_pages` pages of an edge, following `cursors.after`."""
        after: str | None = None
        for _ in range(max_pages):
            document = await self.get(parts, {**params, **({"after": after} if after else {})},
                                      now)
            data = document.get("data")
            if not isinstance(data, list):
                raise SourceError(f"Meta answered no `data` list for /{'/'.join(parts)}")
            page = Page(data, next_after(document.get("paging")))
            yield page
            after = page.after
            if after is None:
                return

    async def post(self, parts: tuple[str, ...], body: dict[str, str], what: str,
                   now: datetime) -> dict[str, Any]:
        """A write; refusals (and an unreachable Meta) are ReplyRefused."""
        try:
            response = await self.http.request("POST", self.url(*parts), data=body,
                                               headers=self._auth)
        except SourceError as exc:
            raise ReplyRefused(502, f"Meta could not be reached: {exc}") from None
        self.usage.read(response.headers, now)
        if not 200 <= response.status < 300:
            raise reply_error(response, self.usage, self.credential, what)
        try:
            document = response.json()
        except SourceError as exc:
            raise ReplyRefused(502, f"Meta answered something unreadable: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            raise ReplyRefused(502, f"{what}: Meta accepted it but answered no id")
        return document

    async def close(self) -> None:
        await self.http.close()


# --- times and cursors ----------------------------------------------------------------


def graph_time(value: Any) -> datetime:
    """Graph's `2026-11-23T06:30:00+0000`, or a webhook's Unix seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise ValueError("time is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"time {value[:40]!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise ValueError(f"time {value[:40]!r} has no UTC offset")
    return moment.astimezone(UTC)


def read_mark(cursor: str | None, now: datetime, backfill: timedelta) -> datetime:
    """The newest item time seen so far; a first poll or an unreadable cursor starts at
    the backfill window (older items are already stored, or never wanted)."""
    try:
        data = json.loads(cursor) if cursor else None
        return graph_time(data["newest"])
    except (TypeError, KeyError, ValueError, json.JSONDecodeError):
        return now - backfill


def write_mark(mark: datetime) -> str:
    return json.dumps({"newest": mark.astimezone(UTC).isoformat()})


def object_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def snippet(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)[:2000]


# --- webhooks -------------------------------------------------------------------------


class WebhookBodyError(ValueError):
    """The body is not a Meta webhook delivery for this kind of source."""


@dataclass(frozen=True)
class Change:
    field: str
    value: dict[str, Any]
    time: Any  # the entry's Unix seconds
    entry_id: str | None


def webhook_changes(body: bytes, expected_object: str) -> list[Change]:
    """`{"object": ..., "entry": [{"id", "time", "changes": [{"field", "value"}]}]}`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge numbers, deep nesting
        raise WebhookBodyError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("object") != expected_object:
        raise WebhookBodyError(f"expected a Meta delivery with object: {expected_object}")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise WebhookBodyError("entry: expected a list")
    changes = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise WebhookBodyError("entry: expected objects")
        if not isinstance(entry.get("changes") or [], list):
            raise WebhookBodyError("entry[].changes: expected a list")
        for change in entry.get("changes") or []:
            if isinstance(change, dict) and isinstance(change.get("value"), dict):
                changes.append(Change(str(change.get("field", "")), change["value"],
                                      entry.get("time"), object_id(entry.get("id"))))
    return changes


class MetaWebhooks:
    """Mixin for the two Meta connectors: the signature and the handshake."""

    accepts_webhooks = True
    signature_header = META_SIGNATURE_HEADER
    config: MetaSource

    @property
    def channel(self) -> str | None:
        return self.config.channel

    def verify(self, body: bytes, header: str | None) -> bool:
        return signature_valid(secret_value(self.config.app_secret), body, header)

    def handshake(self, mode: str | None, token: str | None) -> bool:
        expected = secret_value(self.config.verify_token)
        return (mode == "subscribe" and bool(expected) and token is not None
                and same_secret(expected, token))
