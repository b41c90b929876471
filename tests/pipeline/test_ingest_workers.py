"""`listener ingest` of a big file on a machine with more than one core shares enrichment
with a worker process: every line is stored, enriched exactly as inline, and the worker
is gone afterwards; a small file never starts one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text

from listener import ingest_file as ingest_module
from listener.db import BULK_CACHE_KIB, create_engine
from listener.ingest_file import ingest_file
from listener.models import Mention
from listener.pipeline.enrich_pool import POOL_FROM
from listener.search_fold import search_text

TEXTS = ("Siparişim hâlâ gelmedi, üç gündür bekliyorum!", "Love the new phone, thanks!",
         "Faturam iki kez kesilmiş, kim ilgilenecek?", "The app crashes on login.")


def write_lines(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            handle.write(json.dumps({
                "id": f"w-{i}", "text": TEXTS[i % len(TEXTS)], "channel": "web",
                "created_at": "2026-11-23T09:30:00+03:00",
                "author": {"handle": f"musteri{i % 50}"}}, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("big", [True, False])
async def test_a_big_file_is_enriched_with_a_worker_like_inline(
        tmp_path: Path, services: Any, enricher: Any, monkeypatch: pytest.MonkeyPatch,
        big: bool) -> None:
    started: list[int] = []
    real_pool = ingest_module.EnrichPool

    def counting_pool(**kwargs: Any) -> Any:
        started.append(kwargs["workers"])
        return real_pool(**kwargs)

    monkeypatch.setattr(ingest_module, "EnrichPool", counting_pool)
    monkeypatch.setattr(ingest_module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(ingest_module, "POOL_FROM_BYTES", 1 if big else 10**9)
    data = tmp_path / "big.jsonl"
    write_lines(data, POOL_FROM + 100)

    report = await ingest_file(services, data, "site-form", progress=False)

    assert report.stored == POOL_FROM + 100 and not report.bad_lines
    assert started == ([1] if big else [])
    assert services.pipeline.enrich_pool is None
    async with services.store.read() as session:
        stored = {m.external_id: m for m in await session.scalars(select(Mention))}
    await services.store.close()
    inline = enricher.enrich_many([(text, None, None, None) for text in TEXTS])
    for i, expected in enumerate(inline):
        mention = stored[f"w-{i}"]
        assert (mention.lang, mention.sentiment) == (expected.lang, expected.sentiment)
    # The folded text the queue's search reads, worked out in the worker or here.
    for i in (0, POOL_FROM + 99):
        assert stored[f"w-{i}"].search_text == search_text(TEXTS[i % len(TEXTS)],
                                                            f"musteri{i % 50}", None)


async def test_ingest_gives_sqlite_a_bigger_page_cache_than_serve(
        tmp_path: Path, services: Any) -> None:
    """A bulk import keeps its batch's index pages in memory; `serve` (with its memory
    target) keeps SQLite's default."""
    if services.store.dialect != "sqlite":
        pytest.skip("SQLite's page cache")
    sizes: list[int] = []
    event.listen(services.store.engine.sync_engine, "checkout",
                 lambda connection, *_: sizes.append(cache_size(connection)))
    data = tmp_path / "small.jsonl"
    write_lines(data, 10)

    report = await ingest_file(services, data, "site-form", progress=False)

    assert report.stored == 10
    assert sizes[-1] == -BULK_CACHE_KIB
    serve = create_engine(str(services.store.engine.url))
    try:
        async with serve.connect() as connection:
            assert (await connection.execute(text("PRAGMA cache_size"))).scalar() == -2000
    finally:
        await serve.dispose()


def cache_size(dbapi_connection: Any) -> int:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size")
    size = cursor.fetchone()[0]
    cursor.close()
    return int(size)
