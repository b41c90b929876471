"""Enrichment spread over a worker process, so a big batch uses both cores.

Language detection and sentiment are pure CPU work in Python; in the serving process
they compete with the database writes for one core. A large batch is therefore cut in
shares: the worker processes enrich theirs while this process does its own, then the
answers are put back in input order. Small batches (a webhook, one poll) stay inline,
where starting or talking to a worker would cost more than it saves.

Each worker builds its own `Enricher` once (lingua's models are loaded per process), in
a spawned process: the parent holds lingua's threads, and forking a threaded process is
unsafe. A worker that dies (killed, out of memory) is replaced and the batch it held is
enriched inline, so a crash costs time, never mentions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import sys
import types
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from listener.pipeline.enrich import DEFAULT_LANGUAGES, Enricher, EnrichInput, Enrichment
from listener.pipeline.lines import Line, Packed, ReadyLines, pack, ready_lines, unpack

__all__ = ["EnrichPool"]

log = logging.getLogger(__name__)

POOL_FROM = 500
"""Batches smaller than this are enriched inline."""
STARTING_SHARE = 500
"""Lines `ready_lines` takes here at a time while the workers are starting."""

_worker_enricher: list[Enricher] = []
"""The worker process's own Enricher, set by `_start_worker` (empty in the parent)."""


def _start_worker(languages: tuple[str, ...]) -> None:
    _worker_enricher.append(Enricher(languages))


Columns = tuple[list, ...]
"""A share as one list per field: pickled without a tuple per mention, and the repeated
languages and priorities are pickled once each (about 0.3 µs a mention less than rows)."""


def _started() -> None:
    """Runs in a worker once its initializer has loaded the models: it answers when the
    worker is ready to take batches."""


def _ready_lines(lines: list[Line]) -> Packed:
    """Runs in the worker: `listener ingest`'s lines parsed, normalised and enriched."""
    return pack(ready_lines(_worker_enricher[0], lines))


def _enrich_share(*columns: list) -> Columns:
    """Runs in the worker: (texts, followers, hints, ratings) in, (langs, sentiments,
    priorities) out. The worker's Enricher lives as long as the pool, so its word and
    language caches carry over from batch to batch."""
    found = _worker_enricher[0].enrich_many(list(zip(*columns, strict=True)))
    return ([e.lang for e in found], [e.sentiment for e in found],
            [e.priority for e in found])


class EnrichPool:
    """`Enricher.enrich_many` with large batches shared with worker processes."""

    def __init__(self, languages: Sequence[str] = DEFAULT_LANGUAGES, workers: int = 1,
                 pool_from: int = POOL_FROM, enricher: Enricher | None = None,
                 keep_share: bool = True, inline_while_starting: bool = False) -> None:
        """`keep_share`: this process enriches a share of a big batch too, which is best
        when it has nothing else to do; False leaves all of it to the workers, so this
        process stays free for work it does meanwhile (writing the previous batch).
        `inline_while_starting`: until the workers have loaded their models (a second or
        two) big batches are enriched here, rather than this process waiting for them."""
        self._languages = tuple(languages)
        self._workers = workers
        self._keep_share = keep_share
        self._pool_from = pool_from
        self._enricher = enricher or Enricher(self._languages)
        self._inline_while_starting = inline_while_starting
        self._executor: ProcessPoolExecutor | None = None
        self._starting: Future[None] | None = None

    async def enrich_many(self, inputs: Sequence[EnrichInput]) -> list[Enrichment]:
        """Same answers as `Enricher.enrich_many(inputs)`, in input order."""
        if len(inputs) < self._pool_from or self._workers < 1:
            return self._enricher.enrich_many(inputs)
        if self._inline_while_starting and not self.started():
            return self._enricher.enrich_many(inputs)
        keep = 1 if self._keep_share else 0
        shares = _split(list(inputs), self._workers + keep)
        pending = [self._submit(share) for share in shares[keep:]]
        out = self._enricher.enrich_many(shares[0]) if keep else []
        for share, future in zip(shares[keep:], pending, strict=True):
            out.extend(await self._collect(future, share))
        return out

    async def ready_lines(self, lines: list[Line]) -> ReadyLines:
        """`ready_lines` of these lines, in a worker (here while none has started, and
        when the worker dies: a crash costs time, never lines). While the workers start,
        this process takes the lines a share at a time and looks again after each, so
        the rest of the block goes to a worker as soon as one is ready."""
        if self._workers < 1:
            return ready_lines(self._enricher, lines)
        done: list[ReadyLines] = []
        while lines and self._inline_while_starting and not self.started():
            done.append(ready_lines(self._enricher, lines[:STARTING_SHARE]))
            lines = lines[STARTING_SHARE:]
            await asyncio.sleep(0)  # the batch being written moves on meanwhile
        if lines:
            done.append(await self._in_worker(lines))
        if len(done) == 1:
            return done[0]
        return ReadyLines(  # none (no lines) or several parts, in line order
            [bad for part in done for bad in part.bad],
            [item for part in done for item in part.items],
            [keys for part in done for keys in part.keys])

    async def _in_worker(self, lines: list[Line]) -> ReadyLines:
        loop = asyncio.get_running_loop()
        try:
            return unpack(await loop.run_in_executor(self._running(), _ready_lines, lines))
        except BrokenProcessPool:
            log.warning("an enrichment worker died; reading its %d lines here", len(lines))
            self._drop_executor()
            return ready_lines(self._enricher, lines)

    def started(self) -> bool:
        """Whether the workers are ready for batches; the first call starts them."""
        try:
            self._running()
        except BrokenProcessPool:
            self._drop_executor()
            return False
        return self._starting is not None and self._starting.done()

    def close(self) -> None:
        """Stop the workers (waits for them to exit); later batches run inline."""
        self._workers = 0
        self._starting = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _submit(self, share: list[EnrichInput]) -> asyncio.Future:
        """Hand a share to a worker; a pool whose worker died is replaced first."""
        loop = asyncio.get_running_loop()
        columns = [list(column) for column in zip(*share, strict=True)] or [[], [], [], []]
        try:
            return loop.run_in_executor(self._running(), _enrich_share, *columns)
        except BrokenProcessPool:
            self._drop_executor()
            return loop.run_in_executor(self._running(), _enrich_share, *columns)

    def _running(self) -> ProcessPoolExecutor:
        """The pool; a new one starts its workers at once (its first task answers when
        they are ready, see `started`)."""
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self._languages,))
            with _main_module_left_out():
                self._starting = self._executor.submit(_started)
        return self._executor

    def _drop_executor(self) -> None:
        self._starting = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _collect(self, future: asyncio.Future, share: list[EnrichInput]
                       ) -> list[Enrichment]:
        try:
            return list(map(Enrichment, *await future))
        except BrokenProcessPool:
            log.warning("an enrichment worker died; enriching its %d mentions inline",
                        len(share))
            self._drop_executor()
            return self._enricher.enrich_many(share)


@contextlib.contextmanager
def _main_module_left_out() -> Iterator[None]:
    """Workers spawned meanwhile do not import this program's main module (the CLI, a
    benchmark script) as spawned processes normally do: what they run lives in this
    module, and that import was most of a worker's start beside loading the models."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _split(items: list[EnrichInput], parts: int) -> list[list[EnrichInput]]:
    """`parts` contiguous shares as equal as can be (their order is the input order)."""
    size, extra = divmod(len(items), parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]
