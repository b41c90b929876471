"""`listener ingest`'s lines made ready in one go (in the enrichment worker when there is
one) come out exactly as parsing, normalising and enriching them here would."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import fields

import pytest

from connectors.base import RawAuthor, RawItem
from connectors.webhook import ItemError, parse_line
from listener.pipeline.enrich import Enricher, Enrichment
from listener.pipeline.enrich_pool import EnrichPool
from listener.pipeline.lines import ReadyLines, pack, ready_lines, unpack
from listener.pipeline.noise import repeat_key
from listener.pipeline.normalize import normalize
from listener.pipeline.text_keys import TextKeys
from listener.search_fold import search_text
from tests.pipeline.test_normalize_fields import item_with_every_field


def lines() -> list[tuple[int, bytes]]:
    good = [{"id": f"m-{i}", "text": text, "channel": channel, "source": source,
             "created_at": "2026-11-23T09:30:00+03:00", "rating": rating,
             "author": {"handle": f"@Musteri{i}", "name": "Ayşe", "followers": 12,
                        "email": " A@Example.COM ", "phone": "0532 111 22 33"}}
            for i, (text, channel, source, rating) in enumerate([
                ("Siparişim hâlâ gelmedi!", "Twitter", None, None),
                ("The app crashes on login.", "app_review", "play", 1),
                ("Kargo\x07 nerede \ud83d", "web", "site-form", None)])]
    raw = [json.dumps(row).encode() for row in good]  # escapes keep the lone surrogate
    return [(1, raw[0]), (2, b'{"id": "x", "text": 5}'), (3, raw[1]), (4, b"\xff\xfe"),
            (7, raw[2]), (8, b"[1, 2")]


def outcome(raw: bytes) -> str | tuple[str | None, RawItem]:
    """One line read here: its reason when it is bad, else its source and normal form."""
    try:
        item, source = parse_line(raw)
    except ItemError as exc:
        return str(exc)
    return source, normalize(item)


def test_lines_come_out_as_parsed_normalised_and_enriched_here() -> None:
    enricher = Enricher()
    ready = ready_lines(enricher, lines())
    outcomes = {number: outcome(raw) for number, raw in lines()}
    assert ready.bad == [(n, o) for n, o in outcomes.items() if isinstance(o, str)]
    assert [n for n, _ in ready.bad] == [2, 4, 8]
    good = [o for o in outcomes.values() if not isinstance(o, str)]
    assert [(source, item) for source, item, _ in ready.items] == good
    assert [found for _, _, found in ready.items] == enricher.enrich_many(
        [(i.text, i.author.followers, i.lang, i.rating) for _, i in good])
    # What the queue's search and the noise stage read, worked out with the rest.
    assert ready.keys == [TextKeys(search_text(i.text, i.author.handle, i.author.name),
                                   repeat_key(i.text)) for _, i in good]
    assert ready.keys[0].search_text.startswith("siparisim hala gelmedi")


def test_packing_keeps_every_field() -> None:
    """Packed as plain tuples and rebuilt field by field: a field added to RawItem,
    RawAuthor or Enrichment later must be carried too, or this fails."""
    item = item_with_every_field()
    ready = ReadyLines([(3, "bad")], [("src", item, Enrichment("tr", -0.5, "high"))],
                       [TextKeys("kargo nerede", "kargo")])
    assert unpack(pack(ready)) == ready
    carried = len(pack(ready)[1][0])
    assert carried == 1 + len(fields(RawItem)) - 1 + len(fields(RawAuthor)) + len(
        fields(Enrichment)) + len(TextKeys._fields)


@pytest.mark.parametrize("started", [False, True])
async def test_a_worker_makes_the_same_lines_ready(started: bool) -> None:
    """Until the worker has loaded its models the lines are made ready here; then there."""
    enricher = Enricher()
    pool = EnrichPool(enricher=enricher, keep_share=False, inline_while_starting=True)
    try:
        for _ in range(1200 if started else 0):  # at most a minute
            if pool.started():
                break
            await asyncio.sleep(0.05)
        if started:
            assert pool.started()
        assert await pool.ready_lines(lines()) == ready_lines(enricher, lines())
    finally:
        pool.close()


def many_lines(count: int) -> list[tuple[int, bytes]]:
    """`count` blocks of `lines()` (good and bad), each line with its own number and id."""
    out = []
    for block in range(count):
        for number, raw in lines():
            raw = raw.replace(b'"m-', f'"b{block}-m-'.encode())
            out.append((block * 10 + number, raw))
    return out


async def test_a_block_is_handed_to_the_worker_as_soon_as_it_is_ready() -> None:
    """While the worker starts, a block is made ready here a share at a time; when the
    worker is ready midway, it takes the rest. The lines come out as one block, in order,
    exactly as made ready here."""
    enricher = Enricher()
    pool = EnrichPool(enricher=enricher, keep_share=False, inline_while_starting=True)
    block = many_lines(200)  # 1,200 lines: more than one share
    expected = ready_lines(enricher, block)
    checks = []
    inline = enricher.enrich_many

    def started() -> bool:
        """Not yet at the first look; from the second on, only once it truly is."""
        checks.append(len(checks))
        if len(checks) == 1:
            EnrichPool.started(pool)
            return False
        enricher.enrich_many = None  # type: ignore[method-assign]  # from now: never here
        for _ in range(1200):  # at most a minute
            if EnrichPool.started(pool):
                return True
            time.sleep(0.05)
        raise AssertionError("the worker did not start")

    pool.started = started  # type: ignore[method-assign]
    try:
        assert await pool.ready_lines(block) == expected
        assert len(checks) == 2  # one share here, the rest in the worker
    finally:
        enricher.enrich_many = inline  # type: ignore[method-assign]
        pool.close()


def test_the_worker_loads_neither_the_main_program_nor_the_database_layer() -> None:
    """What a worker imports is what its start costs beside the language models: not the
    program that started it (a spawned process normally re-imports it), not SQLAlchemy,
    not the HTTP client, not every connector."""
    pool = EnrichPool(enricher=Enricher(), keep_share=False, inline_while_starting=True)
    try:
        main, loaded = pool._running().submit(eval, WHAT_IT_LOADED).result(60)
    finally:
        pool.close()
    assert main is None  # here: pytest's
    assert "listener.pipeline.enrich_pool" in loaded
    unwanted = {"sqlalchemy", "aiohttp", "listener.models", "listener.cli",
                "connectors.twitter", "pytest"}
    assert unwanted.isdisjoint(loaded)


WHAT_IT_LOADED = ("(getattr(__import__('sys').modules['__mp_main__'], '__file__', None), "
                  "sorted(__import__('sys').modules))")
"""Evaluated in a worker: the file its main module came from, and every module loaded."""
