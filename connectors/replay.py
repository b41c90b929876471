"""Plays a JSONL file of webhook-format mentions as if they were arriving live.

The first line's `created_at` is mapped to the moment of the first poll and the gaps
between lines are divided by `speed`. With `lead`, the file starts that long before the
first poll, so a demo opens on a morning already under way (older mentions already close
to their deadlines). The cursor remembers the start and the next
line, so a restart continues where it stopped instead of replaying from the top.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from connectors.base import Batch, PolledSourceConfig, Rejected, SourceError
from connectors.webhook import ItemError, parse_line
from listener.config_fields import Duration


class ReplaySource(PolledSourceConfig):
    """Plays a JSONL file as if live: the first line's time becomes the moment of the first poll."""

    kind: Literal["replay"]
    path: str
    interval: Duration = timedelta(seconds=5)
    speed: float = Field(1.0, gt=0)
    lead: Duration = timedelta(0)


class ReplayConnector:
    kind: ClassVar[str] = "replay"
    Config: ClassVar[type[PolledSourceConfig]] = ReplaySource
    polled: ClassVar[bool] = True

    def __init__(self, path: str | Path, speed: float = 1.0, lead: timedelta = timedelta(0),
                 channel: str | None = None):
        self.path = Path(path)
        self.channel = channel or "web"
        self.speed = speed
        self.lead = lead
        self._lines: list[str] | None = None

    @classmethod
    def from_config(cls, source: Any) -> ReplayConnector:
        return cls(source.path, source.speed, source.lead, source.channel)

    def _read(self) -> list[str]:
        if self._lines is None:
            try:
                self._lines = self.path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise SourceError(f"cannot read replay file {self.path}: {exc.strerror}") from exc
        return self._lines

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        lines = self._read()
        start, position = _decode(cursor, now - self.lead)
        origin = self._origin(lines)
        batch = Batch()
        while position < len(lines):
            line = lines[position]
            if not line.strip():
                position += 1
                continue
            try:
                item, _ = parse_line(line, self.channel)
            except ItemError as exc:
                batch.rejected.append(Rejected(f"line {position + 1}: {exc}", line[:2000]))
                position += 1
                continue
            shifted = start + (item.created_at - (origin or item.created_at)) / self.speed
            if shifted > now:
                break
            batch.items.append(replace(item, created_at=shifted))
            position += 1
        batch.cursor = json.dumps({"start": start.isoformat(), "line": position})
        return batch

    @staticmethod
    def _origin(lines: list[str]) -> datetime | None:
        """The first valid line's time: the moment that becomes 'now' on the first poll."""
        for line in lines:
            try:
                return parse_line(line)[0].created_at
            except ItemError:
                continue
        return None

    async def close(self) -> None:
        self._lines = None


def _decode(cursor: str | None, start: datetime) -> tuple[datetime, int]:
    if not cursor:
        return start, 0
    data = json.loads(cursor)
    return datetime.fromisoformat(data["start"]), int(data["line"])
