"""`listener ingest`'s lines made ready in one go: parsed, normalised, enriched, and
their text folded for search and the noise stage (`text_keys`).

With an enrichment worker this runs there, so reading JSON and validating it (about a
fifth of a mention's cost in this process) leaves the process that writes batches. What
comes back is plain values, one tuple a line: a pickled frozen dataclass took longer to
rebuild here than parsing the line did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import RawAuthor, RawItem
from connectors.webhook import ItemError, parse_line
from listener.pipeline.enrich import Enricher, Enrichment
from listener.pipeline.normalize import normalize
from listener.pipeline.text_keys import TextKeys, text_keys

Line = tuple[int, bytes]
"""A line of the file with its number (from 1)."""


@dataclass
class ReadyLines:
    bad: list[tuple[int, str]]  # line number, why it was skipped
    items: list[tuple[str | None, RawItem, Enrichment]]  # the line's own source, if any
    keys: list[TextKeys]  # each item's, in the same order


def ready_lines(enricher: Enricher, lines: Sequence[Line]) -> ReadyLines:
    """Parse, normalise, enrich and fold, in line order; a bad line is skipped with its
    reason."""
    bad: list[tuple[int, str]] = []
    parsed: list[tuple[str | None, RawItem]] = []
    for number, raw in lines:
        try:
            item, source = parse_line(raw)
        except ItemError as exc:
            bad.append((number, str(exc)))
            continue
        parsed.append((source, normalize(item)))
    enriched = enricher.enrich_many(
        [(item.text, item.author.followers, item.lang, item.rating) for _, item in parsed])
    return ReadyLines(bad, [(source, item, enrichment) for (source, item), enrichment
                            in zip(parsed, enriched, strict=True)],
                      [text_keys(item) for _, item in parsed])


Packed = tuple[list[tuple[int, str]], list[tuple[Any, ...]]]


def pack(ready: ReadyLines) -> Packed:
    """Plain tuples to send between processes (`unpack` rebuilds the items)."""
    return ready.bad, [
        (source, item.external_id, item.text, item.created_at, item.channel,
         item.author.handle, item.author.name, item.author.email, item.author.followers,
         item.author.phone, item.url, item.lang, item.in_reply_to, item.thread, item.note,
         item.by_brand, item.repost, item.rating, found.lang, found.sentiment, found.priority,
         *keys)
        for (source, item, found), keys in zip(ready.items, ready.keys, strict=True)]


def unpack(packed: Packed) -> ReadyLines:
    bad, rows = packed
    return ReadyLines(bad, [
        (source, RawItem(external_id, text, created_at, channel,
                         RawAuthor(handle, name, email, followers, phone), url, lang,
                         in_reply_to, thread, note, by_brand, repost, rating),
         Enrichment(found_lang, sentiment, priority))
        for (source, external_id, text, created_at, channel, handle, name, email, followers,
             phone, url, lang, in_reply_to, thread, note, by_brand, repost, rating,
             found_lang, sentiment, priority, _, _) in rows],
        [TextKeys(*row[-2:]) for row in rows])
