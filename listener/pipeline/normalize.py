"""First stage: make every item look the same whatever the source was."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from connectors.base import MAX_FOLLOWERS, RawAuthor, RawItem
from connectors.text import without_lone_surrogates

MAX_TEXT = 20_000
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """NFC so 'ş' typed two ways matches one way; control characters can break terminals and
    JSON consumers downstream. Markup is kept as text: escaping happens at every output."""
    return printable(unicodedata.normalize("NFC", text)).strip()[:MAX_TEXT]


def printable(value: str) -> str:
    """Without control characters (PostgreSQL refuses NUL) or halves of surrogate pairs."""
    if value.isprintable():  # the usual case: nothing to take out
        return value
    return CONTROL_CHARS.sub("", without_lone_surrogates(value))


def plain(value: str | None) -> str | None:
    """Identifiers and addresses, printable."""
    return printable(value) if value is not None else None


def identifier(value: str) -> str:
    """An upstream id with control characters stays distinct and non-empty (stripping
    them would turn "\\x00" into "", or make two ids one) yet storable everywhere."""
    return CONTROL_CHARS.sub("\ufffd", without_lone_surrogates(value))


def normalize_handle(handle: str) -> str:
    return printable(handle).strip().lstrip("@").casefold()[:200]


def in_utc(moment: datetime) -> datetime:
    """Parsed times carry the parser's own time zone object; every later step (deadline,
    conversations, the row) converted them to UTC again, several times a mention."""
    if moment.tzinfo is UTC or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # at the ends of the calendar: kept aside by the next stage
        return moment


def normalize(item: RawItem) -> RawItem:
    """Built field by field rather than with `dataclasses.replace`, which costs twice as
    much at ingest rates; tests/pipeline/test_normalize_fields.py checks no field is lost."""
    author = item.author
    return RawItem(
        identifier(item.external_id),
        clean_text(item.text),
        in_utc(item.created_at),
        printable(item.channel).strip().lower(),
        RawAuthor(
            normalize_handle(author.handle),
            clean_text(author.name)[:200],
            plain(author.email.strip().lower()) if author.email else None,
            min(author.followers, MAX_FOLLOWERS) if author.followers else author.followers,
            plain(author.phone.strip()) if author.phone else None,
        ),
        plain(item.url),
        item.lang,
        identifier(item.in_reply_to) if item.in_reply_to is not None else None,
        identifier(item.thread) if item.thread is not None else None,
        item.note,
        item.by_brand,
        item.repost,
        item.rating,
    )
