"""Ids and memory for sources that re-serve the same list every time (feeds, web pages):
they have no "newer than" parameter, so the cursor remembers what was already handed on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

SEEN_LIMIT = 500
MAX_ID = 200


def storable_id(raw: str) -> str:
    """Ids longer than the database column (some guids are long URLs) become a stable
    digest of themselves, so the same entry still gets the same id every poll."""
    raw = raw.strip()
    if len(raw) <= MAX_ID:
        return raw
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def digest_key(*parts: str) -> str:
    """A stable id for something that has none (an entry with no guid and no link, an
    unusable item we still want to recognise next time)."""
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


@dataclass
class SeenIds:
    """Ids already handed to the pipeline (newest first), bounded to keep the cursor
    small: an id that falls off the end and comes back is only a harmless duplicate."""

    ids: list[str] = field(default_factory=list)
    _lookup: set[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lookup = set(self.ids)

    def __contains__(self, key: str) -> bool:
        return key in self._lookup

    def with_front(self, keys: list[str]) -> SeenIds:
        merged = list(dict.fromkeys([*keys, *self.ids]))
        return SeenIds(merged[:SEEN_LIMIT])
