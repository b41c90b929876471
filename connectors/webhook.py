"""Pushed mentions (SPEC §4): the webhook body format, its HMAC signature, and parsing.

The same object format is read by `listener ingest` and the `replay` source, so all
three go through `parse_item`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from connectors.base import MAX_FOLLOWERS, RawAuthor, RawItem, SourceConfig
from connectors.text import without_lone_surrogates

SIGNATURE_HEADER = "X-Listener-Signature"
# What normalising strips from a handle or channel; nothing else left means nothing to file it by.
BLANK = re.compile(r"[\x00-\x20\x7f-\x9f@\u200b-\u200d\ufeff]*")


class ItemError(ValueError):
    """One pushed object is unusable; the message names the field."""


def printable_word(value: str) -> str:
    if BLANK.fullmatch(value):
        raise ValueError("needs a visible character, not only spaces, @ or control characters")
    return value


def whole_characters(value: Any) -> Any:
    return without_lone_surrogates(value) if isinstance(value, str) else value


# Free text keeps a cut emoji as U+FFFD; an identifier with one is refused by pydantic.
FreeText = Annotated[str, BeforeValidator(whole_characters)]
Word = Annotated[str, AfterValidator(printable_word)]


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    handle: Word = Field(min_length=1, max_length=200)
    name: FreeText = Field("", max_length=200)
    email: str | None = Field(None, max_length=320)
    followers: int | None = Field(None, ge=0, le=MAX_FOLLOWERS, strict=True)  # not "12k" or 1.5
    phone: str | None = Field(None, max_length=40)



class MentionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=200)
    text: FreeText = Field(max_length=100_000)
    created_at: datetime
    url: str | None = Field(None, max_length=4000)
    channel: Word | None = Field(None, min_length=1, max_length=30)
    author: AuthorIn
    lang: str | None = Field(None, max_length=10)
    in_reply_to: str | None = Field(None, max_length=200)
    rating: int | None = Field(None, ge=1, le=5)  # an app review's stars
    source: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("rating", mode="before")
    @classmethod
    def _whole_stars(cls, value: Any) -> Any:
        """`true` or `4.5` are not star counts, though pydantic would take them."""
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("rating must be a whole number of stars, 1 to 5")
        return value

    @field_validator("created_at", mode="before")
    @classmethod
    def _time_as_text(cls, value: Any) -> Any:
        """ISO 8601 text only: pydantic would also read 0 as 1970, hiding a sender's bug."""
        if not isinstance(value, (str, datetime)):
            raise ValueError("created_at must be ISO 8601 text, e.g. 2026-11-23T09:15:00+03:00")
        return value

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at needs a UTC offset, e.g. 2026-11-23T09:15:00+03:00")
        return value


def parse_item(obj: Any, default_channel: str = "web") -> tuple[RawItem, str | None]:
    """Validate one webhook-format object; returns the item and its optional `source`."""
    try:
        mention = MentionIn.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)
        raise ItemError("; ".join(_describe(e) for e in first)) from None
    author = mention.author
    item = RawItem(
        external_id=mention.id,
        text=mention.text,
        created_at=mention.created_at,
        channel=(mention.channel or default_channel).lower(),
        url=mention.url,
        lang=mention.lang,
        in_reply_to=mention.in_reply_to,
        rating=mention.rating,
        author=RawAuthor(author.handle, author.name, author.email, author.followers,
                         author.phone),
    )
    return item, mention.source


def parse_line(line: str | bytes, default_channel: str = "web") -> tuple[RawItem, str | None]:
    """One JSONL line (`listener ingest`, replay files); undecodable text is an ItemError too."""
    try:
        text = line.decode("utf-8-sig") if isinstance(line, bytes) else line
        return parse_item(json.loads(text), default_channel)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge numbers, deep nesting
        raise ItemError(str(exc)) from None


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(body)"
    return f"{path}: {error['msg'].removeprefix('Value error, ')}"


def parse_body(raw: bytes, default_channel: str = "web") -> list[RawItem]:
    """One object or a list of them; any bad object rejects the whole body (nothing stored)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge numbers, deep nesting
        raise ItemError(f"body is not valid JSON: {exc}") from None
    objects = data if isinstance(data, list) else [data]
    if not objects:
        raise ItemError("body is an empty list")
    items = []
    for index, obj in enumerate(objects):
        try:
            items.append(parse_item(obj, default_channel)[0])
        except ItemError as exc:
            where = f"[{index}] " if isinstance(data, list) else ""
            raise ItemError(f"{where}{exc}") from None
    return items


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def same_secret(expected: str, given: str) -> bool:
    """Constant-time, and on bytes: `compare_digest` refuses non-ASCII text, and a header
    can carry any byte (aiohttp hands undecodable ones over as surrogates)."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"),
                               given.encode("utf-8", "surrogatepass"))


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    return bool(secret) and bool(header) and same_secret(sign(secret, body), header or "")


class WebhookSource(SourceConfig):
    """Items carry their own `channel`; the source's `channel` is the default for those
    that do not (else `web`)."""

    kind: Literal["webhook"]
    secret: SecretStr

    @field_validator("secret")
    @classmethod
    def _secret_when_enabled(cls, secret: SecretStr, info: ValidationInfo) -> SecretStr:
        """A field validator (not a model one) so the error is reported at `sources[i].secret`;
        `enabled` is declared first, so it is already in `info.data`."""
        if info.data.get("enabled", True) and not secret.get_secret_value():
            raise ValueError(
                "an enabled webhook source needs a non-empty secret (set it via ${ENV_VAR})"
            )
        return secret


class WebhookConnector:
    """Push-only: nothing to poll; the web layer verifies and parses bodies with this."""

    kind: ClassVar[str] = "webhook"
    Config: ClassVar[type[SourceConfig]] = WebhookSource
    polled: ClassVar[bool] = False

    def __init__(self, source_id: str, secret: str, channel: str | None = None):
        self.source_id = source_id
        self.channel = channel
        self._secret = secret

    @classmethod
    def from_config(cls, source: Any) -> WebhookConnector:
        return cls(source.id, source.secret.get_secret_value(), source.channel)

    async def close(self) -> None:
        pass

    def verify(self, body: bytes, header: str | None) -> bool:
        return signature_valid(self._secret, body, header)

    def __repr__(self) -> str:
        return f"WebhookConnector({self.source_id!r}, secret=***)"
