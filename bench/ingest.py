"""`listener ingest` throughput as a ratio of a raw insert of the same rows, same run.

    .venv/bin/python bench/ingest.py [--mentions 200000] [--db sqlite|postgresql]
                                     [--workers N] [--profile FILE]

Writes a JSONL file of generated Turkish and English mentions (several channels, many
authors and some who come back, e-mail and phone contacts shared across channels,
replies in threads, brand replies, about 1 % duplicate lines), then runs it through the
same function `listener ingest` calls: parsing, normalising, enrichment, customer
linking, noise, routing, deadlines, events, dedupe, one transaction per batch.

Baseline: the same rows (source, external id, channel, author, text, time, url) written
with the driver alone (sqlite3 `executemany`, or asyncpg `executemany` on PostgreSQL)
into a table with the same unique key, one transaction per batch of the same size.

A second baseline, printed beside it: what the pipeline stored (its customers, authors,
identities, link records, mentions and events, row for row) written again with the driver
alone into an empty database of the same schema, every index and trigger included, a
batch of the same size per transaction. It is the database's own cost of storing what
`listener ingest` stored; the ratio to it is the pipeline's share of the work.
`--db postgresql` uses a temporary database on 127.0.0.1:5432, dropped afterwards.
`--workers N` has a worker process read and enrich the lines (`EnrichPool`; its
start-up is part of the figure); without it, what `listener ingest` decides (one
worker for a big file on more than one core), `--workers 0` for none. `--profile FILE`
also writes a cProfile of the ingest run (read it with `pstats`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from listener.app import build_services
from listener.config import parse_config
from listener.db import BULK_CACHE_KIB
from listener.ingest_file import BATCH_SIZE, ingest_file

PG_SERVER = "postgres@127.0.0.1:5432"
CHANNELS = ("twitter", "twitter", "twitter", "instagram", "web", "email", "reddit",
            "mastodon", "app_review")
TR = ("Siparişim {n} hâlâ gelmedi, {p} için üç gündür bekliyorum!",
      "{p} aldım ama kutudan kırık çıktı, iade nasıl olacak?",
      "Faturam iki kez kesilmiş, kim ilgilenecek? Sipariş no {n}",
      "Teşekkürler, {p} çok hızlı geldi 👍",
      "Kargo {c} şubesinde bekliyor, kimse aramadı.",
      "Müşteri hizmetlerine ulaşamıyorum, {p} çalışmıyor.",
      "{p} kampanyası ne zaman bitiyor?",
      "Uygulama giriş yaparken çöküyor, {p} sepetimden silindi.")
EN = ("Where is my refund for order {n}? Third email.",
      "The {p} arrived broken, how do I return it?",
      "App crashes on login since the update, lost my {p} in the cart",
      "Love the new {p}, delivery to {c} was quick!",
      "Nobody answers the phone, order {n} is stuck.",
      "Is the {p} back in stock soon?",
      "Charged twice for {p}, please fix.")
PRODUCTS = ("kulaklık", "telefon", "laptop", "buzdolabı", "süpürge", "kahve makinesi",
            "headphones", "phone", "blender", "TV", "tablet", "watch")
CITIES = ("İstanbul", "Ankara", "İzmir", "Bursa", "Antalya", "Berlin", "London")


def mention_lines(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """`n` webhook-format objects from about n/3 people, 2 % of whom write a third of
    everything; people with an e-mail or phone write on two channels."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=3)
    people = max(n // 3, 10)
    posted: list[str] = []
    for i in range(n):
        if posted and rng.random() < 0.01:  # a re-sent line: a duplicate
            yield {**json.loads(posted[rng.randrange(len(posted))]), "text": "again"}
            continue
        regulars = rng.random() < 0.3  # a few people write a third of everything
        person = rng.randrange(people // 50 + 1) if regulars else rng.randrange(people)
        channel = CHANNELS[(person + i % 2) % len(CHANNELS)]
        english = person % 3 == 0
        text = rng.choice(EN if english else TR).format(
            n=rng.randrange(10**6, 10**7), p=rng.choice(PRODUCTS), c=rng.choice(CITIES))
        author: dict[str, Any] = {"handle": f"{channel[:2]}_user{person}",
                                  "name": f"User {person}",
                                  "followers": rng.choice((12, 150, 900, 25_000))}
        if channel in ("web", "email") or person % 10 == 0:
            author["email"] = f"user{person}@example.com"
        if person % 17 == 0:
            author["phone"] = f"0532 {person % 1000:03d} {person % 100:02d} {person % 97:02d}"
        line: dict[str, Any] = {
            "id": f"m-{i}", "text": text, "channel": channel, "author": author,
            "created_at": (start + timedelta(seconds=i * 259_200 / n)).isoformat(),
            "url": f"https://example.com/{channel}/{i}",
        }
        if channel == "twitter":
            line["lang"] = "en" if english else "tr"
            if i > 10 and rng.random() < 0.1:
                line["in_reply_to"] = f"m-{rng.randrange(i - 10, i)}"
        if channel == "twitter" and rng.random() < 0.005:
            line["author"] = {"handle": "acme", "name": "Acme"}
            line["in_reply_to"] = f"m-{rng.randrange(max(i - 50, 0), i)}"
        if channel == "app_review":
            line["rating"] = rng.randint(1, 5)
        encoded = json.dumps(line, ensure_ascii=False)
        posted.append(encoded)
        yield line


def write_jsonl(path: Path, n: int) -> list[dict[str, Any]]:
    lines = list(mention_lines(n))
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return lines


def raw_rows(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [("ingest", line["id"], line["channel"], line["author"]["handle"], line["text"],
             line["created_at"], line["url"]) for line in lines]


RAW_TABLE = ("CREATE TABLE raw_mentions (id INTEGER PRIMARY KEY, source TEXT, external_id "
             "TEXT, channel TEXT, handle TEXT, text TEXT, created_at TEXT, url TEXT, "
             "UNIQUE (source, external_id))")


def raw_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> float:
    """Same pragmas as the app's engine (listener/db.py)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(RAW_TABLE)
    began = time.perf_counter()
    for i in range(0, len(rows), BATCH_SIZE):
        with connection:
            connection.executemany(
                "INSERT INTO raw_mentions (source, external_id, channel, handle, text, "
                "created_at, url) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows[i:i + BATCH_SIZE])
    elapsed = time.perf_counter() - began
    connection.close()
    return len(rows) / elapsed


async def raw_postgres(dsn: str, rows: list[tuple[Any, ...]]) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(RAW_TABLE.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
                                 .replace("created_at TEXT", "created_at TIMESTAMPTZ"))
        typed = [(*row[:5], datetime.fromisoformat(row[5]), row[6]) for row in rows]
        began = time.perf_counter()
        for i in range(0, len(typed), BATCH_SIZE):
            async with connection.transaction():
                await connection.executemany(
                    "INSERT INTO raw_mentions (source, external_id, channel, handle, text, "
                    "created_at, url) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                    "ON CONFLICT DO NOTHING", typed[i:i + BATCH_SIZE])
        return len(rows) / (time.perf_counter() - began)
    finally:
        await connection.close()


STORED_TABLES = ("customers", "authors", "customer_identities", "customer_links",
                 "mentions", "mention_events")
"""What `listener ingest` writes, in an order its foreign keys accept (`sla_tallies` is
kept by the mentions' triggers)."""
SCHEMA_ORDER = {"table": 0, "index": 1, "trigger": 2, "view": 3}


def stored_again_sqlite(stored: Path, target: Path) -> float:
    """Mentions/s of writing `stored`'s rows into an empty copy of its schema, with the
    app's pragmas and bulk page cache (listener/db.py)."""
    source = sqlite3.connect(stored)
    schema = sorted(source.execute(
        "SELECT type, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%'"), key=lambda row: SCHEMA_ORDER[row[0]])
    tables = {name: source.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()
              for name in STORED_TABLES}
    source.close()
    connection = sqlite3.connect(target)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                   f"cache_size=-{BULK_CACHE_KIB}"):
        connection.execute(f"PRAGMA {pragma}")
    with connection:
        for _, sql in schema:
            connection.execute(sql)
    began = time.perf_counter()
    for name, rows in tables.items():
        marks = ", ".join("?" * len(rows[0])) if rows else ""
        for i in range(0, len(rows), BATCH_SIZE):
            with connection:
                connection.executemany(f"INSERT INTO {name} VALUES ({marks})",
                                       rows[i:i + BATCH_SIZE])
    elapsed = time.perf_counter() - began
    connection.close()
    return len(tables["mentions"]) / elapsed


async def stored_again_postgres(stored: str, target: str) -> float:
    """The same on PostgreSQL: `target` was made from `stored` as a template and is
    emptied first, so it has the same schema, indexes and triggers."""
    source = await asyncpg.connect(f"postgresql://{PG_SERVER}/{stored}")
    try:
        tables = {name: await source.fetch(f"SELECT * FROM {name} ORDER BY id")
                  for name in STORED_TABLES}
    finally:
        await source.close()
    connection = await asyncpg.connect(f"postgresql://{PG_SERVER}/{target}")
    try:
        await connection.execute(f"TRUNCATE {', '.join(STORED_TABLES)}, sla_tallies "
                                 "RESTART IDENTITY CASCADE")
        began = time.perf_counter()
        for name, rows in tables.items():
            if not rows:
                continue
            columns = list(rows[0].keys())
            statement = (f"INSERT INTO {name} ({', '.join(columns)}) VALUES "
                         f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))})")
            for i in range(0, len(rows), BATCH_SIZE):
                async with connection.transaction():
                    await connection.executemany(
                        statement, [tuple(row) for row in rows[i:i + BATCH_SIZE]])
        return len(tables["mentions"]) / (time.perf_counter() - began)
    finally:
        await connection.close()


def bench_config(db_url: str) -> Any:
    every = ["twitter", "instagram", "web", "email", "reddit", "mastodon", "app_review"]
    return parse_config({
        "timezone": "Europe/Istanbul",
        "database": {"url": db_url},
        "calendar": {"hours": {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
                     "holidays": {"country": "TR"}},
        "brand_accounts": {"twitter": ["acme"]},
        "agents": [{"id": f"agent{i}", "channels": every[i % 3:] + every[:i % 3],
                    "languages": ["tr", "en"] if i % 2 else ["tr"], "max_open": 5000}
                   for i in range(8)],
        "routing": {"strategy": "least_loaded", "affinity_window": "24h"},
        "sla": {"policies": [
            {"name": "social-same-day", "match": {"channels": ["twitter", "instagram"]},
             "first_response": "same_day", "cutoff": "16:00", "at_risk": "1h"},
            {"name": "web-4h", "match": {"channels": ["web", "email"]},
             "first_response": "4h", "at_risk": "30m", "next_response": "2h"},
            {"name": "default", "match": {}, "first_response": "same_day",
             "cutoff": "17:00", "at_risk": "1h"}]},
    })


async def pipeline(db_url: str, path: Path, workers: int | None, profile: Path | None
                   ) -> tuple[float, Any]:
    services = build_services(bench_config(db_url))
    profiler = cProfile.Profile() if profile else None
    began = time.perf_counter()
    with profiler or nullcontext():
        report = await ingest_file(services, path, None, workers=workers)
    elapsed = time.perf_counter() - began
    if profiler is not None:
        profiler.dump_stats(profile)
    return report.lines / elapsed, report


async def pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres", timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def pg_database(template: str | None = None) -> AsyncIterator[str]:
    name = f"listener_bench_{secrets.token_hex(4)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await pg_admin(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield name
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def raw_baseline(db: str, path: Path, n: int, tmp: str) -> float:
    """Write the file and measure the raw insert rate of its rows. The generated lines
    are dropped before the pipeline runs: `listener ingest` runs in a process of its
    own, without 200,000 of the benchmark's objects for its garbage collector to walk."""
    print(f"generating {n:,} mentions ...", file=sys.stderr)
    rows = raw_rows(write_jsonl(path, n))
    print("raw insert baseline ...", file=sys.stderr)
    if db == "postgresql":
        async with pg_database() as raw_db:
            return await raw_postgres(f"postgresql://{PG_SERVER}/{raw_db}", rows)
    return raw_sqlite(Path(tmp) / "raw.db", rows)


async def run(db: str, n: int, workers: int | None, profile: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mentions.jsonl"
        baseline = await raw_baseline(db, path, n, tmp)
        if db == "postgresql":
            async with pg_database() as app_db:
                rate, report = await pipeline(f"postgresql+asyncpg://{PG_SERVER}/{app_db}",
                                              path, workers, profile)
                async with pg_database(template=app_db) as again_db:
                    again = await stored_again_postgres(app_db, again_db)
        else:
            rate, report = await pipeline(f"sqlite+aiosqlite:///{tmp}/listener.db", path,
                                          workers, profile)
            again = stored_again_sqlite(Path(tmp) / "listener.db", Path(tmp) / "again.db")
    print(f"database:                {db}, batches of {BATCH_SIZE}, "
          f"{'default' if workers is None else workers} enrichment worker(s)")
    print(f"ingest:                  {report.summary()}")
    print(f"raw {db} insert:{'':<{11 - len(db)}}{baseline:>10,.0f} rows/s (baseline)")
    print(f"listener ingest:         {rate:>10,.0f} mentions/s")
    print(f"ratio ingest/raw:        {rate / baseline:>10.4f}")
    print(f"stored rows written again: {again:>8,.0f} mentions/s (the same schema, driver "
          "alone)")
    print(f"ratio ingest/stored:     {rate / again:>10.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=200_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=None,
                        help="enrichment worker processes (default: as `listener ingest`)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the ingest here")
    args = parser.parse_args()
    asyncio.run(run(args.db, args.mentions, args.workers, args.profile))


if __name__ == "__main__":
    main()
