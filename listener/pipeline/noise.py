"""Noise stage: reposts, blocklisted words and an author repeating the same text.

Noise is stored as `ignored` with the reason in its `ingested` event, never deleted,
never queued, no deadline: the care team's queue stays about people, yet an admin can
still see what was dropped and why (a too-broad blocklist word shows up there).
Everything here is a pure decision over the item and the texts the batch and the
database already hold; the one lookup lives in `IngestTx.recent_texts`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from connectors.base import RawItem
from listener.pipeline.sentiment import fold, lower

if TYPE_CHECKING:
    from listener.config import NoiseConfig

RETWEET = re.compile(r"^\s*RT\s+@\w", re.IGNORECASE)
URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
SPACE = re.compile(r"\s+")


@lru_cache(maxsize=4096)
def casefold(text: str) -> str:
    """Case- and dot-insensitive the Turkish way: "İADE", "iade" and "ıade" are one word,
    so a blocklist entry matches however a phone keyboard spelt it. Memoised: the noise
    and brand stages fold the same text one after the other."""
    return SPACE.sub(" ", fold(lower(text, None))).strip()


def repeat_key(text: str) -> str:
    """The text as a spammer repeats it: case, spacing and changing links ignored."""
    return casefold(URL.sub(" ", text or ""))


@dataclass
class RepeatLog:
    """When each (author, normalised text) was seen: rows already stored, then the
    batch's own items as they are decided, so a burst inside one poll counts too."""

    seen: dict[tuple[int, str], list[datetime]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, rows: Iterable[tuple[int, str, datetime]]) -> RepeatLog:
        log = cls()
        for author_id, text, at in rows:
            log.add(author_id, text, at)
        return log

    def add(self, author_id: int, text: str, at: datetime) -> None:
        self.add_key(author_id, repeat_key(text), at)

    def add_key(self, author_id: int, key: str, at: datetime) -> None:
        if key:
            self.seen[(author_id, key)].append(at)

    def count(self, author_id: int, key: str, since: datetime, until: datetime) -> int:
        """How often the author wrote the text with this `repeat_key` in [since, until]."""
        times = self.seen.get((author_id, key), ())
        return sum(since <= at <= until for at in times)


class NoiseFilter:
    """Built once from `noise:` in the config; `reason` is the whole decision."""

    def __init__(self, blocklist: Sequence[str] = (),
                 repeat_window: timedelta = timedelta(hours=1), repeat_limit: int = 3):
        self.repeat_window = repeat_window
        self.repeat_limit = repeat_limit
        self._blocked = [
            (entry, re.compile(rf"(?<!\w){re.escape(casefold(entry))}(?!\w)"))
            for entry in blocklist if casefold(entry)
        ]

    @classmethod
    def from_config(cls, config: NoiseConfig) -> NoiseFilter:
        return cls(config.blocklist, config.repeat_window, config.repeat_limit)

    def reason(self, item: RawItem, author_id: int, log: RepeatLog,
               key: str | None = None) -> str | None:
        """Why this item is noise, or None. Records the item in `log` either way, so the
        fourth copy is noise even when all four arrive in one batch. `key`: the item's
        `repeat_key`, when worked out already."""
        if key is None:
            key = repeat_key(item.text)
        verdict = self._reason(item, author_id, log, key)
        log.add_key(author_id, key, item.created_at)
        return verdict

    def _reason(self, item: RawItem, author_id: int, log: RepeatLog, key: str
                ) -> str | None:
        if item.repost or RETWEET.match(item.text or ""):
            return "noise: repost"
        flat = casefold(item.text or "") if self._blocked else ""
        for entry, pattern in self._blocked:
            if pattern.search(flat):
                return f"noise: blocklist {entry!r}"
        if key and log.count(author_id, key, item.created_at - self.repeat_window,
                             item.created_at) >= self.repeat_limit:
            return "noise: repeated"
        return None

    def since(self, items: Sequence[RawItem]) -> datetime:
        """How far back the repeat lookup must read for this batch."""
        return min(item.created_at for item in items) - self.repeat_window
