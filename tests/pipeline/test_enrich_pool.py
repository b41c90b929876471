"""Batch enrichment, inline and shared with a worker process, answers as one at a time.

The worker is a real spawned process; one pool serves the whole module (starting a
worker loads lingua's models, about a second).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from listener.pipeline.enrich import Enricher
from listener.pipeline.enrich_pool import EnrichPool

LABELLED = Path(__file__).parent.parent / "fixtures" / "enrichment"


def labelled_inputs() -> list[tuple[str, int | None, str | None, int | None]]:
    texts = [json.loads(line)["text"] for name in ("eval", "heldout", "fresh")
             for line in (LABELLED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
             if line]
    extras = [(None, None, None), (25_000, "tr", None), (120, "und", 1), (None, "EN", 5)]
    inputs = [(text, *extras[i % len(extras)]) for i, text in enumerate(texts)]
    inputs += [("", None, None, None), ("@acme https://x.co/1 #ok", 5, None, 2), ("Aç", 1, "", 3)]
    return inputs


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


@pytest.fixture(scope="module")
def expected(enricher: Enricher) -> list:
    return [enricher.enrich(text, followers, lang, rating=rating)
            for text, followers, lang, rating in labelled_inputs()]


@pytest.fixture(scope="module")
def pool(enricher: Enricher):
    pool = EnrichPool(pool_from=100, enricher=enricher)
    yield pool
    pool.close()


def test_enrich_many_answers_as_enrich_does_one_by_one(expected: list) -> None:
    assert Enricher().enrich_many(labelled_inputs()) == expected
    assert Enricher().enrich_many([]) == []


def test_a_repeated_text_gets_the_same_language_from_the_cache(enricher: Enricher) -> None:
    text = "Kargom hâlâ gelmedi, ne zaman gelecek?"
    first = enricher.enrich_many([(text, None, None, None)] * 3)
    assert [found.lang for found in first] == ["tr"] * 3
    assert enricher.enrich(text) == first[0]


async def test_pool_answers_equal_the_inline_ones(pool: EnrichPool, expected: list) -> None:
    inputs = labelled_inputs()
    assert await pool.enrich_many(inputs) == expected
    assert await pool.enrich_many(inputs[:10]) == expected[:10]  # small: inline


async def test_small_batches_never_start_a_worker(expected: list) -> None:
    running = {child.pid for child in multiprocessing.active_children()}
    small = EnrichPool(pool_from=100)
    try:
        assert await small.enrich_many(labelled_inputs()[:50]) == expected[:50]
        assert {child.pid for child in multiprocessing.active_children()} <= running
    finally:
        small.close()


async def test_a_killed_worker_costs_time_not_mentions(pool: EnrichPool, expected: list
                                                       ) -> None:
    inputs = labelled_inputs()
    assert await pool.enrich_many(inputs) == expected
    for child in multiprocessing.active_children():
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    assert await pool.enrich_many(inputs) == expected  # the dead worker's share inline
    assert await pool.enrich_many(inputs) == expected  # and a new worker after that


async def test_close_stops_the_worker(expected: list) -> None:
    running = {child.pid for child in multiprocessing.active_children()}
    own = EnrichPool(pool_from=100)
    assert await own.enrich_many(labelled_inputs()) == expected
    workers = [c for c in multiprocessing.active_children() if c.pid not in running]
    assert workers
    own.close()
    assert not any(worker.is_alive() for worker in workers)
    assert await own.enrich_many(labelled_inputs()) == expected  # inline after close



async def test_a_pool_that_keeps_no_share_answers_the_same(enricher: Enricher, expected: list
                                                           ) -> None:
    """`keep_share=False` (this process busy writing): the worker enriches the whole batch."""
    running = {child.pid for child in multiprocessing.active_children()}
    own = EnrichPool(pool_from=100, enricher=enricher, keep_share=False)
    try:
        inline = enricher.enrich_many
        enricher.enrich_many = None  # type: ignore[method-assign]  # big batches: never here
        try:
            assert await own.enrich_many(labelled_inputs()) == expected
        finally:
            enricher.enrich_many = inline  # type: ignore[method-assign]
        assert [c for c in multiprocessing.active_children() if c.pid not in running]
    finally:
        own.close()


async def test_batches_are_enriched_here_while_the_worker_starts(enricher: Enricher,
                                                                 expected: list) -> None:
    """`inline_while_starting`: the first big batch does not wait a second or two for the
    worker to load its models; once it has, the worker takes them, with the same answers."""
    own = EnrichPool(pool_from=100, enricher=enricher, keep_share=False,
                     inline_while_starting=True)
    try:
        assert await own.enrich_many(labelled_inputs()) == expected
        assert not own.started()  # still loading: that batch was enriched here
        for _ in range(600):
            if own.started():
                break
            await asyncio.sleep(0.1)
        assert own.started()
        inline = enricher.enrich_many
        enricher.enrich_many = None  # type: ignore[method-assign]  # now: never here
        try:
            assert await own.enrich_many(labelled_inputs()) == expected
        finally:
            enricher.enrich_many = inline  # type: ignore[method-assign]
    finally:
        own.close()
