"""`listener ingest` of a big file on a machine with more than one core shares enrichment
with a worker process: every line is stored, enriched exactly as inline, and the worker
is gone afterwards; a small file never starts one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from listener import ingest_file as ingest_module
from listener.ingest_file import ingest_file
from listener.models import Mention
from listener.pipeline.enrich_pool import POOL_FROM

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
