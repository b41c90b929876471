"""Enrichment throughput: one mention at a time, in batches, and shared with a worker.

    .venv/bin/python bench/enrich.py [--mentions 20000] [--batch 1000]

Baseline: `Enricher.enrich` called once per mention (how the pipeline enriched before
batches). Against it, in the same run: `Enricher.enrich_many` inline, and
`EnrichPool.enrich_many` with one worker process. Every path gets a fresh enricher and
the same distinct texts (the labelled sets, each with three extra words), so no cache
answers a text it saw on another path. Also prints what the enricher adds to resident
memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from listener.pipeline.enrich import Enricher, EnrichInput
from listener.pipeline.enrich_pool import EnrichPool

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "enrichment"


def make_inputs(n: int) -> list[EnrichInput]:
    texts = [json.loads(line)["text"] for name in ("eval", "heldout", "fresh")
             for line in (LABELLED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
             if line]
    words = sorted({w for t in texts for w in t.split() if w.isalpha()})
    rng = random.Random(12)
    return [(f"{texts[i % len(texts)]} {' '.join(rng.sample(words, 3))}",
             rng.choice((None, 120, 25_000)), rng.choice((None, None, None, "tr", "und")),
             rng.choice((None, None, None, 1, 5))) for i in range(n)]


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def per_item(inputs: list[EnrichInput]) -> float:
    enricher = Enricher()
    began = time.perf_counter()
    for text, followers, lang, rating in inputs:
        enricher.enrich(text, followers, lang, rating)
    return len(inputs) / (time.perf_counter() - began)


def batched(inputs: list[EnrichInput], batch: int) -> float:
    enricher = Enricher()
    began = time.perf_counter()
    for i in range(0, len(inputs), batch):
        enricher.enrich_many(inputs[i:i + batch])
    return len(inputs) / (time.perf_counter() - began)


async def pooled(inputs: list[EnrichInput], batch: int) -> float:
    pool = EnrichPool(pool_from=min(batch, 500))
    await pool.enrich_many(make_inputs(batch))  # starts the worker: not part of the figure
    began = time.perf_counter()
    for i in range(0, len(inputs), batch):
        await pool.enrich_many(inputs[i:i + batch])
    rate = len(inputs) / (time.perf_counter() - began)
    pool.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    inputs = make_inputs(args.mentions)
    before = resident_mb()
    Enricher()
    print(f"enricher resident memory: {resident_mb() - before:.0f} MB")
    base = per_item(inputs)
    print(f"per-item enrich():      {base:>9,.0f} mentions/s  (baseline)")
    inline = batched(inputs, args.batch)
    print(f"enrich_many inline:     {inline:>9,.0f} mentions/s  ratio {inline / base:.2f}")
    pool = asyncio.run(pooled(inputs, args.batch))
    print(f"EnrichPool (1 worker):  {pool:>9,.0f} mentions/s  ratio {pool / base:.2f}")


if __name__ == "__main__":
    main()
