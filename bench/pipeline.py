"""Pipeline throughput as a ratio of raw SQLite inserts measured in the same run.

    .venv/bin/python bench/pipeline.py [--mentions 3000] [--batch 500]

Baseline: plain sqlite3 `executemany` of the same number of rows, same batch size, one
transaction per batch, on a file in the same temp dir. The ratio is what the full
pipeline (normalize, language, sentiment, customer linking, routing, deadline, events,
dedupe) costs relative to just writing the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.base import RawAuthor, RawItem
from listener.app import build_services, prepare_database
from listener.config import parse_config
from listener.pipeline.ingest import SourceInfo

TEXTS = ("Siparişim hâlâ gelmedi, rezalet bir hizmet!", "Where is my refund? Third email.",
         "Teşekkürler, kargo çok hızlı geldi 👍", "App crashes on login since the update",
         "Faturam iki kez kesilmiş, kim ilgilenecek?", "Love the new store layout!")


def make_items(n: int) -> list[RawItem]:
    start = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    channels = ("twitter", "web", "reddit", "email", "mastodon")
    return [RawItem(external_id=f"b-{i}", text=f"{TEXTS[i % len(TEXTS)]} #{i}",
                    created_at=start + timedelta(seconds=i), channel=channels[i % 5],
                    author=RawAuthor(f"user{i % 400}", f"User {i % 400}"),
                    url=f"https://x.com/u/status/{i}") for i in range(n)]


def raw_sqlite(path: Path, items: list[RawItem], batch: int) -> float:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, source TEXT, external_id TEXT, "
                       "text TEXT, created_at TEXT, UNIQUE(source, external_id))")
    began = time.perf_counter()
    for i in range(0, len(items), batch):
        with connection:
            connection.executemany(
                "INSERT INTO m (source, external_id, text, created_at) VALUES (?, ?, ?, ?)",
                [("bench", it.external_id, it.text, it.created_at.isoformat())
                 for it in items[i:i + batch]])
    elapsed = time.perf_counter() - began
    connection.close()
    return len(items) / elapsed


async def pipeline(path: Path, items: list[RawItem], batch: int) -> float:
    config = parse_config({
        "timezone": "Europe/Istanbul",
        "database": {"url": f"sqlite+aiosqlite:///{path}"},
        "agents": [{"id": f"a{i}", "channels": ["twitter", "web", "reddit", "email", "mastodon"],
                    "max_open": 100000} for i in range(5)],
        "sla": {"policies": [{"name": "same-day", "first_response": "same_day",
                              "cutoff": "16:00", "at_risk": "1h"}]},
    })
    services = build_services(config)
    await prepare_database(services, migrate=True)
    source = SourceInfo("bench", "replay")
    began = time.perf_counter()
    for i in range(0, len(items), batch):
        await services.pipeline.ingest(source, items[i:i + batch])
    elapsed = time.perf_counter() - began
    await services.store.close()
    return len(items) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    items = make_items(args.mentions)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = raw_sqlite(Path(tmp) / "raw.db", items, args.batch)
        rate = asyncio.run(pipeline(Path(tmp) / "pipeline.db", items, args.batch))
    print(f"raw sqlite insert:  {baseline:10.0f} rows/s (baseline)")
    print(f"pipeline ingest:    {rate:10.0f} mentions/s")
    print(f"ratio pipeline/raw: {rate / baseline:10.4f}")


if __name__ == "__main__":
    main()
