"""Whose brand a mention is about: ours, or one of the configured competitors.

Pure: the item, the source and the config in, a brand name out. The pipeline stores it
on the mention (`brand`); a competitor's mentions are kept and counted, never queued.

The rule, first match wins:
1. the source declares `brand:` (a search for a competitor's name is about that
   competitor, whatever else its posts say);
2. the author is one of a competitor's `handles`: that competitor talking (stored with
   its brand, not counted in share of voice; our own accounts are the pipeline's
   `brand_accounts` check, which comes before all this);
3. the mention came on a channel people use to write to us (`DIRECT_CHANNELS`: a
   contact form, the support mailbox, a call): ours. Whatever else they name, they wrote
   to us and wait for our answer;
4. the text names our brand (an `@handle` of `brand_accounts` on the item's channel or
   source kind, or a `brand_keywords` entry): ours. Our brand wins ties, so a customer
   comparing us with a rival still reaches the queue;
5. the text names a competitor (an `@handle` of its `handles`, or a `keywords` entry):
   the one named first; at the same position, the one listed first in the config;
6. nothing named: ours, since the sources listen for our brand.

Keywords and handles match whole words or phrases, ignoring case the Turkish way (`İADE`,
`iade` and `ıade` are one word): `rival` matches "Rival'e", "#rival" and "@rival" but not
"rivalry".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from connectors.base import RawItem
from listener.pipeline.noise import casefold

OURS = "ours"  # the `brand` of every mention about our own brand
# Channels on which people write to us rather than about someone: always ours, unless
# their source declares otherwise.
DIRECT_CHANNELS = frozenset({"web", "email", "phone", "chat"})


def _handle(handle: str) -> str:
    return casefold(handle.strip().lstrip("@"))


@lru_cache(maxsize=1024)
def _mention_of(handle: str) -> re.Pattern[str]:
    """`@handle` as a whole word; compiled once per handle, not once per mention."""
    return re.compile(rf"(?<![\w@]){re.escape('@' + handle)}(?!\w)")


def _phrase(words: str) -> str:
    """A keyword as a pattern: whole words, any run of spaces between them."""
    return r"\s+".join(re.escape(part) for part in casefold(words).split())


@dataclass(frozen=True)
class Brand:
    """One brand's names: handles per channel (or source kind) and keywords."""

    name: str
    handles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    keywords: re.Pattern[str] | None = None
    _on: dict[tuple[str, str], frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    """`handles_on`'s answers: asked once or twice per mention, for a few pairs."""

    @classmethod
    def of(cls, name: str, handles: Mapping[str, Iterable[str]],
           keywords: Iterable[str]) -> Brand:
        folded = {key.lower(): frozenset(filter(None, map(_handle, values)))
                  for key, values in handles.items()}
        phrases = [_phrase(k) for k in keywords if casefold(k)]
        pattern = re.compile(rf"(?<!\w)(?:{'|'.join(phrases)})(?!\w)") if phrases else None
        return cls(name, folded, pattern)

    def handles_on(self, channel: str, kind: str) -> frozenset[str]:
        """`handles` are keyed like `brand_accounts`: by channel, or by source kind."""
        found = self._on.get((channel, kind))
        if found is None:
            found = self._on[(channel, kind)] = (self.handles.get(channel, frozenset())
                                                 | self.handles.get(kind, frozenset()))
        return found

    def first_named(self, text: str, channel: str, kind: str) -> int | None:
        """Where this brand is first named in the (casefolded) text, or None."""
        found = []
        if self.keywords is not None and (match := self.keywords.search(text)):
            found.append(match.start())
        for handle in self.handles_on(channel, kind):
            if "@" + handle in text and (match := _mention_of(handle).search(text)):
                found.append(match.start())
        return min(found) if found else None

    def owns(self, author_handle: str, channel: str, kind: str) -> bool:
        """Is the author one of this brand's own accounts? (Folded only where the brand
        has accounts: most channels have none, and folding was most of the check.)"""
        handles = self.handles_on(channel, kind)
        return bool(handles) and _handle(author_handle) in handles


class Brands:
    """Built once from the config; `brand_of` is the whole decision."""

    def __init__(self, ours: Brand | None = None, competitors: Sequence[Brand] = (),
                 source_brands: Mapping[str, str] | None = None):
        self.ours = ours or Brand(OURS)
        self.competitors = tuple(competitors)
        self.source_brands = dict(source_brands or {})
        self._by_name = {brand.name: brand for brand in (self.ours, *self.competitors)}

    @classmethod
    def from_config(cls, config: Any) -> Brands:
        ours = Brand.of(OURS, config.brand_accounts, config.brand_keywords)
        competitors = [Brand.of(c.name, c.handles, c.keywords) for c in config.competitors]
        sources = {s.id: s.brand for s in config.sources if s.brand}
        return cls(ours, competitors, sources)

    @property
    def names(self) -> list[str]:
        """Ours first, then the competitors in config order: the report's column order."""
        return [self.ours.name, *(c.name for c in self.competitors)]

    def brand_of(self, item: RawItem, source_id: str, kind: str) -> str:
        """OURS or a competitor's name; see the module's docstring for the rule."""
        declared = self.source_brands.get(source_id)
        if declared:
            return declared
        for brand in self.competitors:
            if brand.owns(item.author.handle, item.channel, kind):
                return brand.name
        if item.channel in DIRECT_CHANNELS or not self.competitors:
            return OURS  # without competitors, steps 4 to 6 all answer ours
        text = casefold(item.text or "")
        if self.ours.first_named(text, item.channel, kind) is not None:
            return OURS
        named = [(at, index, brand.name) for index, brand in enumerate(self.competitors)
                 if (at := brand.first_named(text, item.channel, kind)) is not None]
        return min(named)[2] if named else OURS

    def own_post(self, item: RawItem, brand: str, kind: str) -> bool:
        """Written by one of the brand's own accounts: the brand talking, not about it.
        (Our own accounts are also the pipeline's `is_brand`, which knows `by_brand`.)"""
        known = self._by_name.get(brand)
        return known is not None and known.owns(item.author.handle, item.channel, kind)
