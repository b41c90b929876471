"""Read latency at scale: API pages, SLA summary, the queue page and /metrics against a
large database, each with its ratio to a primary-key lookup measured in the same run.

    .venv/bin/python bench/reads.py [--db sqlite|postgresql] [--stored 1000000] [--open 50000]

The database is filled with bulk SQL (SQLite: `executemany` on one connection;
PostgreSQL: COPY), not through the pipeline: customers and their authors on several
channels, mentions over a year (languages, priorities, sentiment), the newest ones open
(assigned or not, most past their deadline), older ones answered in time or late,
ignored or closed, and their history events. Then the real `listener serve` runs in a
subprocess on 127.0.0.1 and every request is timed from a client in this process; the
server's resident memory is read from /proc/<pid>/status (VmRSS now, VmHWM its peak).

The same server is first run against 1,000 mentions: that run's /metrics is the baseline
the issue's "/metrics ≤ 1.5× its time at 1,000 mentions" compares with. The exit status
is 0 either way (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from listener.search_fold import search_text  # noqa: E402
from listener.store.queries import encode_cursor  # noqa: E402
from listener.store.users import HASHER  # noqa: E402

PG_SERVER = "postgres@127.0.0.1:5432"
TOKEN = "bench-reads-token"
PASSWORD = "bench reads password"
AGENTS = [f"agent{i}" for i in range(12)]
CHANNELS = (("twitter", "x-brand", 35), ("instagram", "ig", 15), ("facebook", "fb", 10),
            ("web", "site-form", 15), ("email", "mailbox", 15), ("reddit", "reddit", 5),
            ("appstore", "reviews", 5))
LANGS = (("tr", 60), ("en", 30), ("de", 3), ("ar", 3), ("ru", 2), (None, 2))
WORDS = ("kargo", "iade", "fatura", "şikayet", "sipariş", "refund", "delivery", "login",
         "update", "teşekkürler", "hesap", "ödeme", "courier", "password", "app")
DEADLINE = timedelta(hours=4)
AT_RISK = timedelta(hours=1)
TARGETS = {"api": 100.0, "summary": 100.0, "queue": 150.0}


def weighted(rng: Random, table: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(table, weights=[row[-1] for row in table])[0]


@dataclass(frozen=True)
class Shape:
    stored: int
    open: int
    customers: int
    authors: int


def shape(stored: int, open_count: int) -> Shape:
    open_count = min(open_count, stored // 2)
    return Shape(stored, open_count, max(10, stored // 5), max(10, stored // 4))


def customers(s: Shape, now: datetime) -> Iterator[tuple[Any, ...]]:
    rng = Random(1)
    for i in range(1, s.customers + 1):
        segment = rng.choices(("vip", "standard", None), weights=(5, 60, 35))[0]
        yield (i, f"Müşteri {i}", f"c{i}@example.com", segment, now - timedelta(days=400),
               None, None, None)


def authors(s: Shape) -> Iterator[tuple[Any, ...]]:
    rng = Random(2)
    for i in range(1, s.authors + 1):
        channel = weighted(rng, CHANNELS)[0]
        yield (i, channel, f"user{i}", f"User {i}", rng.randrange(0, 50_000), None,
               1 + (i - 1) % s.customers)


def author_channels(s: Shape) -> dict[str, list[int]]:
    by_channel: dict[str, list[int]] = {}
    for row in authors(s):
        by_channel.setdefault(row[1], []).append(row[0])
    return by_channel


MENTION_COLUMNS = ("id", "source", "channel", "external_id", "url", "author_id",
                   "customer_id", "text", "lang", "sentiment", "priority", "created_at",
                   "ingested_at", "status", "assignee", "in_reply_to", "thread", "sla_policy",
                   "deadline_at", "at_risk_at", "first_response_at", "response_external_id",
                   "response_url", "alerts_fired", "next_alert_at", "follow_up_of", "brand",
                   "counted", "rating", "search_text")
EVENT_COLUMNS = ("id", "mention_id", "kind", "at", "actor", "data")


def mentions(s: Shape, now: datetime) -> Iterator[tuple[tuple[Any, ...], list[tuple]]]:
    """Each mention with its events. Posting times run over a year, oldest id first; the
    newest 5/4·open ids hold the open ones (4 in 5), the rest of history is settled."""
    rng = Random(3)
    by_channel = author_channels(s)
    span = timedelta(days=365)
    window_start = s.stored - s.open * 5 // 4
    for i in range(1, s.stored + 1):
        channel, source, _ = weighted(rng, CHANNELS)
        author = rng.choice(by_channel.get(channel) or [1])
        customer = 1 + (author - 1) % s.customers
        created = now - span * (1 - i / s.stored) - timedelta(minutes=5)
        lang = weighted(rng, LANGS)[0]
        words = " ".join(rng.sample(WORDS, 3))
        text = (f"Merhaba, {words} konusunda yardım lazım #{i}" if lang == "tr"
                else f"Hello, I need help with {words} #{i}")
        deadline = created + DEADLINE
        is_open = i > window_start and i % 5 != 0
        status, assignee, responded, has_deadline = "responded", None, None, True
        if is_open:
            assignee = rng.choice(AGENTS) if rng.random() < 0.7 else None
            status = "assigned" if assignee else "new"
        else:
            roll = rng.random()
            assignee = rng.choice(AGENTS)
            if roll < 0.08:
                status, has_deadline = "ignored", False  # the pipeline's: no clock
            elif roll < 0.14:
                status = "ignored"  # an agent's, after the clock started
            else:
                status = "closed" if roll > 0.95 else "responded"
                responded = created + timedelta(minutes=rng.randrange(5, 8 * 60))
        row = (i, source, channel, f"{source}-{i}", f"https://example.com/{source}/{i}",
               author, customer, text, lang, round(rng.uniform(-1, 1), 3),
               rng.choices(("urgent", "high", "normal", "low"), weights=(3, 12, 75, 10))[0],
               created, created + timedelta(seconds=3), status, assignee, None, None,
               "standard" if has_deadline else None, deadline if has_deadline else None,
               deadline - AT_RISK if has_deadline else None, responded, None, None,
               2 if has_deadline and not responded else 0, None, None, "ours", True,
               rng.randint(1, 5) if channel == "appstore" else None,
               search_text(text, f"user{author}", f"User {author}"))  # as ingest writes it
        events = [("ingested", created + timedelta(seconds=3), source, {"reason": None})]
        if assignee:
            events.append(("assigned", created + timedelta(seconds=3), "router",
                           {"agent": assignee, "reason": "least loaded"}))
        if responded:
            events.append(("responded", responded, assignee, {"note": None}))
        elif status == "ignored" and has_deadline:
            events.append(("ignored", created + timedelta(hours=1), assignee,
                           {"reason": "spam"}))
        yield row, events


def sqlite_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def users_row(now: datetime) -> tuple[Any, ...]:
    return (1, "bench", "lead", None, HASHER.hash(PASSWORD), None, True, now)


USER_COLUMNS = ("id", "name", "role", "agent_id", "password_hash", "lang", "active",
                "created_at")
CUSTOMER_COLUMNS = ("id", "display_name", "email", "segment", "created_at", "external_id",
                    "lifetime_value", "merged_into")
AUTHOR_COLUMNS = ("id", "channel", "handle", "name", "followers", "email", "customer_id")


def batches(s: Shape, now: datetime, size: int = 20_000
            ) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """Mentions and events in chunks, events numbered as they come."""
    event_id = 0
    rows: list[tuple] = []
    events: list[tuple] = []
    for row, row_events in mentions(s, now):
        rows.append(row)
        for kind, at, actor, data in row_events:
            event_id += 1
            events.append((event_id, row[0], kind, at, actor, data))
        if len(rows) >= size:
            yield rows, events
            rows, events = [], []
    if rows:
        yield rows, events


def fill_sqlite(path: str, s: Shape, now: datetime) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")

    def put(table: str, columns: Sequence[str], rows: Any) -> None:
        marks = ",".join("?" * len(columns))
        db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})",
                       ([sqlite_time(v) for v in row] for row in rows))

    with db:
        put("customers", CUSTOMER_COLUMNS, customers(s, now))
        put("authors", AUTHOR_COLUMNS, authors(s))
        put("users", USER_COLUMNS, [users_row(now)])
        for rows, events in batches(s, now):
            put("mentions", MENTION_COLUMNS, rows)
            put("mention_events", EVENT_COLUMNS, events)
    db.close()


async def fill_postgresql(url: str, s: Shape, now: datetime) -> None:
    db = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async def put(table: str, columns: Sequence[str], rows: Any) -> None:
            records = [tuple(json.dumps(v) if isinstance(v, dict) else v for v in row)
                       for row in rows]
            await db.copy_records_to_table(table, records=records, columns=list(columns))

        # Triggers off while loading (the tallies' row-by-row upserts on a few hot rows in
        # one huge transaction would take tens of minutes), then tallied as 0012 does.
        await db.execute("SET session_replication_role = replica")
        await put("customers", CUSTOMER_COLUMNS, customers(s, now))
        await put("authors", AUTHOR_COLUMNS, authors(s))
        await put("users", USER_COLUMNS, [users_row(now)])
        for rows, events in batches(s, now):
            await put("mentions", MENTION_COLUMNS, rows)
            await put("mention_events", EVENT_COLUMNS, events)
        await db.execute("SET session_replication_role = origin")
        outcome = "mention_sla_outcome(status, deadline_at, first_response_at)"
        await db.execute(f"INSERT INTO sla_tallies (channel, outcome, count) "
                         f"SELECT channel, {outcome}, count(*) FROM mentions "
                         f"WHERE {outcome} IS NOT NULL GROUP BY 1, 2")
        for table in ("customers", "authors", "users", "mentions", "mention_events"):
            await db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT max(id) FROM {table}))")
        await db.execute("VACUUM ANALYZE")  # what autovacuum does soon after a bulk load
    finally:
        await db.close()


def write_config(folder: Path, db_url: str, port: int) -> Path:
    every_day = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    config = {
        "timezone": "UTC",
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": [TOKEN],
                   "session_key": secrets.token_hex(32)},
        "calendar": {"hours": every_day},
        "agents": [{"id": a, "channels": [c for c, _, _ in CHANNELS], "max_open": 100_000}
                   for a in AGENTS],
        "sla": {"policies": [{"name": "standard", "first_response": "4h", "at_risk": "1h"}]},
    }
    path = folder / "listener.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def signed_in(client: aiohttp.ClientSession, base: str, name: str,
                    password: str) -> None:
    """Wait for a just-started `listener serve` to answer /healthz, then sign in as
    `name` (the session cookie stays in `client`)."""
    for _ in range(600):
        try:
            async with client.get(base + "/healthz") as response:
                if response.status == 200:
                    break
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)
    else:
        raise RuntimeError("listener serve did not start")
    page = await (await client.get(base + "/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore
    async with client.post(base + "/login", allow_redirects=False, data={
            "name": name, "password": password, "csrf_token": token}) as response:
        assert response.status == 303, await response.text()


def rss_mb(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) / 1024  # type: ignore
            for key in ("VmRSS", "VmHWM")}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(max(0, -(-len(ordered) * q // 100) - 1))]


@dataclass
class Timing:
    name: str
    p50: float
    p95: float


class Server:
    """`listener serve` in a subprocess, and a signed-in client (API token and cookie)."""

    def __init__(self, config: Path, port: int):
        self.config, self.base = config, f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.client: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Server:
        listener = str(ROOT / ".venv" / "bin" / "listener")
        subprocess.run([listener, "migrate", "--config", str(self.config)], check=True,
                       capture_output=True)
        self.process = subprocess.Popen([listener, "serve", "--config", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.client = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"},
                                            cookie_jar=aiohttp.CookieJar(unsafe=True))
        try:
            await self.started()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def started(self) -> None:
        assert self.client is not None
        await signed_in(self.client, self.base, "bench", PASSWORD)

    async def __aexit__(self, *exc: object) -> None:
        assert self.client is not None and self.process is not None
        await self.client.close()
        self.process.terminate()
        self.process.wait(timeout=60)

    async def time(self, name: str, path: str, repeat: int) -> Timing:
        assert self.client is not None
        took = []
        for attempt in range(repeat + 3):
            began = time.perf_counter()
            async with self.client.get(self.base + path) as response:
                await response.read()
                assert response.status == 200, f"{path}: {response.status}"
            if attempt >= 3:  # warm-up: pools, prepared statements, caches
                took.append((time.perf_counter() - began) * 1000)
        return Timing(name, percentile(took, 50), percentile(took, 95))

    def memory(self) -> dict[str, float]:
        assert self.process is not None
        return rss_mb(self.process.pid)


@dataclass
class Database:
    kind: str
    url: str
    folder: Path
    pg_name: str | None = None


async def pg_admin(statement: str) -> None:
    user, _, host_port = PG_SERVER.partition("@")
    host, _, port = host_port.partition(":")
    db = await asyncpg.connect(user=user, host=host, port=int(port), database="postgres")
    try:
        await db.execute(statement)
    finally:
        await db.close()


async def new_database(kind: str, folder: Path, label: str) -> Database:
    if kind == "sqlite":
        return Database(kind, f"sqlite+aiosqlite:///{folder}/{label}.db", folder)
    name = f"listener_bench_{label}_{secrets.token_hex(3)}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    return Database(kind, f"postgresql+asyncpg://{PG_SERVER}/{name}", folder, name)


async def drop_database(db: Database) -> None:
    if db.pg_name:
        await pg_admin(f'DROP DATABASE IF EXISTS "{db.pg_name}" WITH (FORCE)')


async def filled(db: Database, s: Shape, now: datetime) -> float:
    """Schema by `listener migrate`, rows by bulk SQL; returns the seconds it took."""
    config = write_config(db.folder, db.url, free_port())
    began = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "listener"), "migrate", "--config",
                    str(config)], check=True, capture_output=True)
    if db.kind == "sqlite":
        await asyncio.to_thread(fill_sqlite, db.url.split(":///", 1)[1], s, now)
    else:
        await fill_postgresql(db.url.replace("+asyncpg", ""), s, now)
    return time.perf_counter() - began


def requests(s: Shape) -> list[tuple[str, str, str]]:
    """(name, path, target group); the first one is the baseline."""
    deep = encode_cursor(max(2, s.stored // 50))
    return [
        ("GET /api/v1/mentions/{id} (baseline)", f"/api/v1/mentions/{s.stored // 2}", ""),
        ("GET /healthz", "/healthz", ""),
        ("mentions first page", "/api/v1/mentions", "api"),
        ("mentions ?channel=reddit", "/api/v1/mentions?channel=reddit", "api"),
        ("mentions ?assignee=agent3", "/api/v1/mentions?assignee=agent3", "api"),
        ("mentions ?status=new", "/api/v1/mentions?status=new", "api"),
        ("mentions ?source=reviews", "/api/v1/mentions?source=reviews", "api"),
        ("mentions ?q=kargo", "/api/v1/mentions?q=kargo", "api"),
        ("mentions ?sla_state=breached", "/api/v1/mentions?sla_state=breached", "api"),
        ("mentions deep cursor (2% from start)", f"/api/v1/mentions?cursor={deep}", "api"),
        ("mentions ?channel=web deep cursor",
         f"/api/v1/mentions?channel=web&cursor={deep}", "api"),
        ("GET /api/v1/sla/summary", "/api/v1/sla/summary", "summary"),
        ("queue page /", "/", "queue"),
        ("queue page ?lang=en", "/?lang=en", "queue"),
        ("queue page ?channel=reddit", "/?channel=reddit", "queue"),
        ("queue page ?assignee=unassigned", "/?assignee=unassigned", "queue"),
        ("queue page ?q=iade", "/?q=iade", "queue"),
        ("queue page 20", "/?page=20", "queue"),
        ("GET /metrics", "/metrics", "metrics"),
    ]


async def run(kind: str, stored: int, open_count: int, repeat: int) -> None:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "small").mkdir()
        small = await new_database(kind, folder / "small", "small")
        big = await new_database(kind, folder, "big")
        try:
            await filled(small, shape(1000, 50), now)
            small_stats = await serve_and_time(small, [("GET /metrics", "/metrics", "")],
                                               repeat)
            fill_seconds = await filled(big, shape(stored, open_count), now)
            print(f"database {kind}; {stored:,} mentions stored, "
                  f"{shape(stored, open_count).open:,} open; filled in {fill_seconds:.0f} s "
                  f"by bulk SQL; {repeat} timed requests each, one at a time")
            stats = await serve_and_time(big, requests(shape(stored, open_count)), repeat)
        finally:
            await drop_database(small)
            await drop_database(big)
    report(stats, small_stats)


@dataclass
class Stats:
    timings: list[tuple[Timing, str]]
    memory_idle: dict[str, float]
    memory: dict[str, float]


async def serve_and_time(db: Database, asked: list[tuple[str, str, str]], repeat: int) -> Stats:
    port = free_port()
    async with Server(write_config(db.folder, db.url, port), port) as server:
        await asyncio.sleep(2)  # let start-up jobs (gauges, spike watch) run once
        idle = server.memory()
        timings = [(await server.time(name, path, repeat), group) for name, path, group in asked]
        return Stats(timings, idle, server.memory())


def report(stats: Stats, small: Stats) -> None:
    base = stats.timings[0][0]
    metrics_small = small.timings[0][0]
    print(f"{'request':<40}{'p50 ms':>9}{'p95 ms':>9}{'p95/base':>10}  target")
    verdicts = []
    for timing, group in stats.timings:
        if group == "metrics":
            limit = 1.5 * metrics_small.p95
            target = f"≤ 1.5× p95 at 1,000 ({metrics_small.p95:.2f} ms)"
        else:
            limit = TARGETS.get(group, 0.0)
            target = f"p95 ≤ {limit:.0f} ms" if limit else ""
        ok = "" if not limit else ("PASS" if timing.p95 <= limit else "FAIL")
        if ok:
            verdicts.append(ok)
        print(f"{timing.name:<40}{timing.p50:9.2f}{timing.p95:9.2f}"
              f"{timing.p95 / max(base.p95, 1e-3):9.1f}x  {target} {ok}")
    print(f"/metrics at 1,000 mentions (baseline run): p50 {metrics_small.p50:.2f} ms, "
          f"p95 {metrics_small.p95:.2f} ms")
    rss = stats.memory
    print(f"listener serve RSS (subprocess, /proc VmRSS): {rss['VmRSS']:.0f} MB after the "
          f"requests, peak {rss['VmHWM']:.0f} MB; at start-up {stats.memory_idle['VmRSS']:.0f}"
          f" MB; with 1,000 mentions {small.memory['VmRSS']:.0f} MB "
          f"(target ≤ 300 MB: {'PASS' if rss['VmHWM'] <= 300 else 'FAIL'})")
    print(f"{verdicts.count('PASS')}/{len(verdicts)} latency targets met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=40, help="timed requests per line")
    args = parser.parse_args()
    asyncio.run(run(args.db, max(1000, args.stored), args.open, args.repeat))


if __name__ == "__main__":
    os.environ.setdefault("LISTENER_LOG_LEVEL", "WARNING")
    main()
