"""How long a reply may be on each channel, counted the way the platform counts it.

Each connector declares its platform's limit beside its code (`reply_limit`, in
characters; None: no limit), and `LENGTH_LIMITS` gathers them by kind from the registry.
The table below only covers channels without a connector of their own (e-mail, web
forms); `replies.length_limits` overrides any of them per channel or source kind.

X counts every link as 23 characters (t.co) and characters outside the
Latin, Greek, Cyrillic and punctuation ranges (emoji, CJK) as two; Mastodon counts
links as 23 and `@user@server` as `@user`. Everywhere else a character is a code
point. Where the platform's own rule is subtler (emoji sequences on X), the count
here is the higher one, so a reply that fits here fits there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors import CONNECTORS

# Channels no connector kind is named after: X's other name, mail and web forms.
CHANNEL_LIMITS: Mapping[str, int | None] = {
    "x": 280,
    "email": None,
    "web": None,
}


def connector_limits(registry: Mapping[str, type[Any]]) -> dict[str, int | None]:
    """kind → `reply_limit` for every connector that declares one."""
    return {kind: cls.reply_limit for kind, cls in registry.items()
            if hasattr(cls, "reply_limit")}


LENGTH_LIMITS: Mapping[str, int | None] = {**CHANNEL_LIMITS, **connector_limits(CONNECTORS)}
LINK_LENGTH = 23
X_CHANNELS = frozenset({"twitter", "x"})
LINKS_AS_23 = X_CHANNELS | {"mastodon"}
# What X counts as one: code points in these ranges (twitter-text's default config).
X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
TRAILING_PUNCTUATION = ".,:;!?)]}'\""
FEDIVERSE_MENTION = re.compile(r"(?<![\w@])(@\w+)@[\w.-]+\w")


@dataclass(frozen=True)
class Measure:
    length: int
    limit: int | None
    over: bool  # longer than the limit: the platform would refuse it


def measure(channel: str, text: str,
            limits: Mapping[str, int | None] = LENGTH_LIMITS) -> Measure:
    """The reply's length as `channel` counts it, and that channel's limit."""
    length, limit = count(channel, text), limits.get(channel)
    return Measure(length, limit, limit is not None and length > limit)


def count(channel: str, text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    if channel not in LINKS_AS_23:
        return len(text)
    if channel == "mastodon":
        text = FEDIVERSE_MENTION.sub(r"\1", text)
    length, start = 0, 0
    for match in URL.finditer(text):
        link = match.group().rstrip(TRAILING_PUNCTUATION)
        length += _plain_length(channel, text[start:match.start()]) + LINK_LENGTH
        start = match.start() + len(link)
    return length + _plain_length(channel, text[start:])


def _plain_length(channel: str, text: str) -> int:
    if channel not in X_CHANNELS:
        return len(text)
    return sum(1 if _light(ord(ch)) else 2 for ch in text)


def _light(code: int) -> bool:
    return any(low <= code <= high for low, high in X_LIGHT_RANGES)
