"""First stage: make every item look the same whatever the source was."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from connectors.base import RawAuthor, RawItem

MAX_TEXT = 20_000
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """NFC so 'ş' typed two ways matches one way; control characters can break terminals and
    JSON consumers downstream. Markup is kept as text: escaping happens at every output."""
    text = CONTROL_CHARS.sub("", unicodedata.normalize("NFC", text)).strip()
    return text[:MAX_TEXT]


def plain(value: str | None) -> str | None:
    """Identifiers and addresses without control characters (PostgreSQL refuses NUL)."""
    return CONTROL_CHARS.sub("", value) if value is not None else None


def normalize_handle(handle: str) -> str:
    return CONTROL_CHARS.sub("", handle).strip().lstrip("@").casefold()[:200]


def normalize(item: RawItem) -> RawItem:
    author = item.author
    return replace(
        item,
        text=clean_text(item.text),
        external_id=plain(item.external_id) or item.external_id,
        url=plain(item.url),
        thread=plain(item.thread),
        in_reply_to=plain(item.in_reply_to),
        channel=CONTROL_CHARS.sub("", item.channel).strip().lower(),
        author=RawAuthor(
            handle=normalize_handle(author.handle),
            name=clean_text(author.name)[:200],
            email=plain(author.email.strip().lower()) if author.email else None,
            followers=author.followers,
            phone=plain(author.phone.strip()) if author.phone else None,
        ),
    )
