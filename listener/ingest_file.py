"""`listener ingest`: a JSONL file through the same pipeline as live sources.

Bad lines are reported with their line number and skipped; good lines are stored in
batches, each batch one transaction, so an interrupted run can simply be run again
(stored lines come back as duplicates). While one batch is written the next is read
and enriched (in the pipeline's worker process too, when it has one).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from connectors.base import RawItem
from listener.app import prepare_database
from listener.db import use_bulk_cache
from listener.pipeline.enrich import Enrichment
from listener.pipeline.enrich_pool import EnrichPool
from listener.pipeline.ingest import Prepared, SourceInfo, ready_batch
from listener.pipeline.lines import Line, ReadyLines, ready_lines
from listener.pipeline.text_keys import TextKeys
from listener.services import Services

ReadyFn = Callable[[list[Line]], Awaitable[ReadyLines]]
Pending = tuple[list[RawItem], list[Enrichment], list[TextKeys]]

BATCH_SIZE = 10_000
"""Lines per transaction (`listener ingest --batch-size`). A batch has fixed costs:
its look-ups read its customers' recent conversations and count every open mention, and
its commit writes out the index pages it touched, which the next batch's mentions share
again. At 10,000 a batch ingested about 10 % faster than at 5,000 (and 5,000 a fifth
faster than 2,000). It holds SQLite's one writer for about a second: a `serve` next to
it waits that long to write; a smaller batch makes that wait shorter."""
YIELD_EVERY = 50
"""Lines read between turns given to the batch being written."""
DEFAULT_SOURCE = "ingest"
POOL_FROM_BYTES = 4_000_000
"""Files at least this big (about 12,000 lines) are enriched with the help of a worker
process when the machine has more than one core: its start-up, loading the language
models, is paid back many times over by a big file, never by a small one (and until
it has started, this process enriches the batches itself)."""
COLLECT_EVERY = (100_000, 50, 100)
"""Garbage collector thresholds while ingesting (Python's default: 700, 10, 10)."""
HANDOFF_SECONDS = 0.0002
"""Python's thread switch interval while ingesting (its default: 0.005 s)."""


@dataclass
class IngestReport:
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    quarantined: int = 0  # good lines the pipeline kept aside (a time out of range)
    readable: bool = True

    def summary(self) -> str:
        return (
            f"{self.lines} lines: {self.stored} stored, {self.duplicates} duplicates, "
            f"{len(self.bad_lines) + self.quarantined} rejected"
        )


async def ingest_file(
    services: Services, path: str | Path, source_id: str | None, progress: bool = True,
    workers: int | None = None, batch_size: int = BATCH_SIZE,
) -> IngestReport:
    """`workers`: enrichment worker processes; by default one for a big file on a machine
    with more than one core (see `POOL_FROM_BYTES`), else none. `batch_size`: lines per
    transaction (see `BATCH_SIZE`)."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    report = IngestReport()
    try:
        Path(path).open("rb").close()
    except OSError as exc:  # missing, a directory, no permission: said before touching the DB
        print(f"cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        report.readable = False
        return report
    if workers is None:
        big = Path(path).stat().st_size >= POOL_FROM_BYTES
        workers = 1 if big and (os.cpu_count() or 1) > 1 else 0
    pool = None
    if workers and services.pipeline.enrich_pool is None:
        # The workers take whole batches: this process writes the previous one meanwhile.
        pool = services.pipeline.enrich_pool = EnrichPool(
            workers=workers, enricher=services.pipeline.enricher, keep_share=False,
            inline_while_starting=True)
        pool.started()  # they load their models while the database is brought up to date
    enricher = services.pipeline.enricher

    async def inline(lines: list[Line]) -> ReadyLines:
        return ready_lines(enricher, lines)

    writer = _Writer(services, report)
    bar = None
    try:
        await prepare_database(services, migrate=True)
        await use_bulk_cache(services.store.engine)
        bar = tqdm(
            total=Path(path).stat().st_size,
            unit="B",
            unit_scale=True,
            desc="ingest",
            file=sys.stderr,
            disable=not progress,
        )
        with _rare_collections(), _quick_handoffs():
            shared = services.pipeline.enrich_pool
            await _read_into(path, writer, report, source_id, bar,
                             shared.ready_lines if shared is not None else inline, batch_size)
    finally:
        await writer.cancel()
        if pool is not None:
            pool.close()
            services.pipeline.enrich_pool = None
        if bar is not None:
            bar.close()
        await services.store.close()
    return report


async def _read_into(path: str | Path, writer: _Writer, report: IngestReport,
                     source_id: str | None, bar: Any, ready: ReadyFn, batch_size: int) -> None:
    """Bytes, a block of lines at a time, made ready (parsed, normalised, enriched) by
    `ready` — in the enrichment worker when there is one — while the previous batch is
    written. A line that is not UTF-8 or not a mention is one bad line, not a crash."""
    pending: dict[str, Pending] = {}
    block: list[Line] = []
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            bar.update(len(raw))
            if number % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if not raw.strip():
                continue
            report.lines += 1
            block.append((number, raw))
            if len(block) >= batch_size:
                await _take(await ready(block), pending, writer, report, source_id, batch_size)
                block = []
        if block:
            await _take(await ready(block), pending, writer, report, source_id, batch_size)
        for source, (items, enrichments, keys) in pending.items():
            await writer.submit(source, ready_batch(items, enrichments, keys))
        await writer.drain()


async def _take(ready: ReadyLines, pending: dict[str, Pending], writer: _Writer,
                report: IngestReport, source_id: str | None, batch_size: int) -> None:
    """Report a block's bad lines; its mentions join their source's batch, and a full
    batch goes to the writer."""
    for number, reason in ready.bad:
        report.bad_lines.append((number, reason))
        tqdm.write(f"line {number}: skipped: {reason}", file=sys.stderr)
    for (line_source, item, enrichment), found_keys in zip(ready.items, ready.keys,
                                                           strict=True):
        source = source_id or line_source or DEFAULT_SOURCE
        items, enrichments, keys = pending.setdefault(source, ([], [], []))
        items.append(item)
        enrichments.append(enrichment)
        keys.append(found_keys)
        if len(items) >= batch_size:
            del pending[source]
            await writer.submit(source, ready_batch(items, enrichments, keys))


@contextlib.contextmanager
def _rare_collections() -> Iterator[None]:
    """A big file makes millions of short-lived objects next to the language models'
    millions of long-lived ones; at the default thresholds the collector scanned all of
    them again and again and took half the run. Cycles are still collected, rarely."""
    before = gc.get_threshold()
    gc.set_threshold(*COLLECT_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextlib.contextmanager
def _quick_handoffs() -> Iterator[None]:
    """The database driver's thread inserts one slice of a batch while this thread plans
    the next (`Pipeline.write`), but it needs the interpreter lock for a moment to start
    and to finish each statement. At the default interval it waited up to 5 ms for the
    planner to let go, each time, and the two barely overlapped."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(HANDOFF_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class _Writer:
    """Writes one batch while the next is read and enriched. Writes go one at a time, so
    batches commit in file order; a failed batch raises at the next `submit` or `drain`."""

    def __init__(self, services: Services, report: IngestReport):
        self.services = services
        self.report = report
        self._task: asyncio.Task[None] | None = None

    async def submit(self, source: str, prepared: Prepared) -> None:
        await self.drain()
        self._task = asyncio.create_task(self._write(source, prepared))

    async def drain(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task

    async def cancel(self) -> None:
        """Stop a batch in flight (its transaction rolls back): an interrupted run."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _write(self, source: str, prepared: Prepared) -> None:
        configured: Any = self.services.config.source(source)
        kind = configured.kind if configured else "ingest"
        result = await self.services.pipeline.write(SourceInfo(source, kind), prepared)
        self.report.stored += len(result.stored)
        self.report.duplicates += result.duplicates
        self.report.quarantined += result.rejected
        for kept_aside in prepared.quarantined:
            tqdm.write(f"id {kept_aside.external_id}: kept in rejected_items: "
                       f"{kept_aside.reason}", file=sys.stderr)
