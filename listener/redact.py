"""Secrets out of every message. An upstream may quote the credentials it was sent back in
its error body (`{"error": "bad token Bearer abc..."}`), and that body becomes a log line
and a source's `last_error`; so each secret the config holds is replaced before either."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from pydantic import BaseModel, SecretStr

HIDDEN = "***"
SHORTEST = 4  # a one-letter test password would turn every "a" into ***


def secrets_in(value: Any) -> set[str]:
    """Every SecretStr value inside a config object, however deeply nested."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return {secret} if len(secret) >= SHORTEST else set()
    if isinstance(value, BaseModel):
        return secrets_in([getattr(value, name) for name in type(value).model_fields])
    if isinstance(value, dict):
        return secrets_in(list(value.values()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return set().union(*(secrets_in(v) for v in value)) if value else set()
    return set()


def url_parts(secret: str) -> tuple[str, ...]:
    """A webhook URL is secret for its path (Slack's token) or query; a server answering
    an error may quote just those."""
    parts = urlsplit(secret)
    if not (parts.scheme and parts.netloc):
        return ()
    return tuple(p for p in (parts.path, parts.query, parts.password or "") if p != "/")


class Redactor:
    """Replaces each secret, also as it appears percent-encoded in a quoted URL or form."""

    def __init__(self, secrets: Iterable[str]):
        parts = {part for s in secrets for part in (s, *url_parts(s)) if len(part) >= SHORTEST}
        variants = {form for s in parts for form in (s, quote(s, safe=""), quote_plus(s))}
        ordered = sorted(variants, key=len, reverse=True)  # a secret inside another: longest
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def of(cls, config: Any) -> Redactor:
        return cls(secrets_in(config))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(HIDDEN, text) if self._pattern is not None else text


class RedactingFilter(logging.Filter):
    """On a handler: the record's message and traceback leave with secrets replaced."""

    def __init__(self, redact: Redactor):
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def redact_logs(config: Any) -> None:
    """Every handler on the root logger redacts this config's secrets from then on."""
    redacting = RedactingFilter(Redactor.of(config))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
