"""What a polled connector adds on top of the pipeline, measured in the same run.

    .venv/bin/python bench/polling.py [--items 2000]

A local aiohttp server serves an RSS feed of N entries (Turkish and English text, HTML
summaries). Two figures, on a fresh SQLite file each:
- baseline: the same entries, already parsed, pushed through `pipeline.ingest`;
- polled:   one `coordinator.poll` of an `rss` source: HTTP fetch, feedparser, HTML to
            text, then the same pipeline, with the cursor committed in the same
            transaction.
The ratio polled/baseline is the price of fetching and parsing; a second poll of the
unchanged feed (ETag → 304) shows what a quiet poll costs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import TEXTS
from listener.app import build_services, prepare_database
from listener.config import parse_config
from listener.pipeline.ingest import SourceInfo

NOW = datetime.now(UTC)


def feed(n: int) -> bytes:
    entries = "".join(
        f"<item><guid>e-{i}</guid><title>{TEXTS[i % len(TEXTS)]}</title>"
        f"<link>https://news.example/{i}</link>"
        f"<description>&lt;p&gt;{TEXTS[(i + 1) % len(TEXTS)]} &amp;amp; #{i}&lt;/p&gt;"
        f"</description><author>user{i % 300}@example.com (User {i % 300})</author>"
        f"<pubDate>{format_datetime(NOW - timedelta(seconds=i))}</pubDate></item>"
        for i in range(n))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Bench</title><link>https://news.example/</link>{entries}"
            f"</channel></rss>").encode()


def config(path: Path, url: str) -> object:
    return parse_config({
        "timezone": "Europe/Istanbul",
        "database": {"url": f"sqlite+aiosqlite:///{path}"},
        "sources": [{"id": "news", "kind": "rss", "url": url, "interval": "60s",
                     "timeout": "120s"}],
        "agents": [{"id": f"a{i}", "channels": ["rss"], "max_open": 100000} for i in range(5)],
        "sla": {"policies": [{"name": "same-day", "first_response": "same_day"}]},
    })


async def run(n: int) -> tuple[float, float, float]:
    body = feed(n)

    async def serve(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(body=body, content_type="application/rss+xml",
                            headers={"ETag": '"v1"'})

    app = web.Application()
    app.router.add_get("/feed.xml", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/feed.xml"
    with tempfile.TemporaryDirectory() as tmp:
        polled = build_services(config(Path(tmp) / "polled.db", url))
        await prepare_database(polled, migrate=True)
        connector = polled.coordinator.sources["news"].connector
        items = (await connector.fetch(None, NOW)).items
        await connector.close()

        baseline = build_services(config(Path(tmp) / "baseline.db", url))
        await prepare_database(baseline, migrate=True)
        began = time.perf_counter()
        await baseline.pipeline.ingest(SourceInfo("news", "rss", "rss"), items)
        base_rate = len(items) / (time.perf_counter() - began)

        began = time.perf_counter()
        assert await polled.coordinator.poll("news") == "ok"
        poll_rate = len(items) / (time.perf_counter() - began)
        began = time.perf_counter()
        assert await polled.coordinator.poll("news") == "ok"
        quiet = time.perf_counter() - began
        for services in (polled, baseline):
            await services.coordinator.close()
            await services.store.close()
    await runner.cleanup()
    return base_rate, poll_rate, quiet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    base_rate, poll_rate, quiet = asyncio.run(run(args.items))
    print(f"pipeline only:        {base_rate:10.0f} mentions/s (baseline)")
    print(f"rss poll end to end:  {poll_rate:10.0f} mentions/s")
    print(f"ratio polled/pipeline:{poll_rate / base_rate:10.4f}")
    print(f"quiet poll (304):     {quiet * 1000:10.1f} ms")


if __name__ == "__main__":
    main()
