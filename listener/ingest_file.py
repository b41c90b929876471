"""`listener ingest`: a JSONL file through the same pipeline as live sources.

Bad lines are reported with their line number and skipped; good lines are stored in
batches, each batch one transaction, so an interrupted run can simply be run again
(stored lines come back as duplicates).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from connectors.base import RawItem
from connectors.webhook import ItemError, parse_line
from listener.app import prepare_database
from listener.pipeline.ingest import SourceInfo
from listener.services import Services

BATCH_SIZE = 500
DEFAULT_SOURCE = "ingest"


@dataclass
class IngestReport:
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    readable: bool = True

    def summary(self) -> str:
        return (
            f"{self.lines} lines: {self.stored} stored, {self.duplicates} duplicates, "
            f"{len(self.bad_lines)} rejected"
        )


async def ingest_file(
    services: Services, path: str | Path, source_id: str | None, progress: bool = True
) -> IngestReport:
    report = IngestReport()
    try:
        Path(path).open("rb").close()
    except OSError as exc:  # missing, a directory, no permission: said before touching the DB
        print(f"cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        report.readable = False
        return report
    await prepare_database(services, migrate=True)
    pending: dict[str, list[RawItem]] = {}
    bar = tqdm(
        total=Path(path).stat().st_size,
        unit="B",
        unit_scale=True,
        desc="ingest",
        file=sys.stderr,
        disable=not progress,
    )
    try:
        # Bytes, decoded line by line: a line that is not UTF-8 is one bad line, not a crash.
        with Path(path).open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                bar.update(len(raw))
                if not raw.strip():
                    continue
                report.lines += 1
                try:
                    item, line_source = parse_line(raw)
                except ItemError as exc:
                    report.bad_lines.append((number, str(exc)))
                    tqdm.write(f"line {number}: skipped: {exc}", file=sys.stderr)
                    continue
                source = source_id or line_source or DEFAULT_SOURCE
                pending.setdefault(source, []).append(item)
                if len(pending[source]) >= BATCH_SIZE:
                    await _flush(services, source, pending.pop(source), report)
            for source, items in pending.items():
                await _flush(services, source, items, report)
    finally:
        bar.close()
        await services.store.close()
    return report


async def _flush(
    services: Services, source: str, items: list[RawItem], report: IngestReport
) -> None:
    configured: Any = services.config.source(source)
    kind = configured.kind if configured else "ingest"
    result = await services.pipeline.ingest(SourceInfo(source, kind), items)
    report.stored += len(result.stored)
    report.duplicates += result.duplicates
