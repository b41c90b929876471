"""Resident memory of `listener serve`: after start-up, after a burst of mixed requests
with Turkish and English traffic, and its peak, each with its ratio to a bare
`python -c "import aiohttp, sqlalchemy"` process measured in the same run.

    .venv/bin/python bench/memory.py [--mentions 2000] [--rounds 3]

The server runs as a subprocess on a temporary SQLite file with the example config's
shape (a webhook source, agents, a policy, holidays). The burst pushes signed webhook
batches of TR/EN mentions, then reads what a care team reads: the mentions API (first,
filtered and searched pages), one mention, the SLA summary, /metrics, the OpenAPI
document, and the dashboard, queue, mention, team and reports pages signed in. Memory is
read from /proc/<pid>/status: VmRSS (resident now) right after the burst and once the
server's periodic `malloc_trim` has run again, and VmHWM (the peak). The exit status
is 0 either way (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reads import free_port, rss_mb, signed_in  # noqa: E402
from connectors.webhook import SIGNATURE_HEADER, sign  # noqa: E402
from listener.malloc import TRIM_SECONDS  # noqa: E402

LISTENER = str(ROOT / ".venv" / "bin" / "listener")
TOKEN = "bench-memory-token"
SECRET = "bench-memory-webhook-secret"
PASSWORD = "bench memory password"
TARGET_MB = 300
BATCH = 50
TURKISH = ("Siparişim üç gündür kargoda, hâlâ gelmedi. Ne zaman teslim edilecek?",
           "Faturamda iki kez ücret kesilmiş, iade istiyorum lütfen yardımcı olun",
           "Uygulama güncellemeden sonra açılmıyor, şifremi de sıfırlayamıyorum",
           "Teşekkürler, kurye çok hızlı getirdi, ürün harika görünüyor")
ENGLISH = ("My order has been stuck in delivery for three days, where is it?",
           "I was charged twice on my invoice, I want a refund please help",
           "The app will not open since the update and I cannot reset my password",
           "Thanks, the courier was really quick and the product looks great")


def write_config(folder: Path, port: int) -> Path:
    config = {
        "timezone": "Europe/Istanbul",
        "database": {"url": f"sqlite+aiosqlite:///{folder}/listener.db"},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": [TOKEN],
                   "session_key": secrets.token_hex(32)},
        "calendar": {"hours": {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
                     "holidays": {"country": "TR"}},
        "sources": [{"id": "site-form", "kind": "webhook", "secret": SECRET, "channel": "web"}],
        "agents": [{"id": f"agent{i}", "channels": ["web", "twitter"], "max_open": 10_000}
                   for i in range(6)],
        "sla": {"policies": [{"name": "standard", "first_response": "4h", "at_risk": "1h"}]},
    }
    path = folder / "listener.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def mention(rng: Random, number: int, now: datetime) -> dict[str, object]:
    text = rng.choice(TURKISH if rng.random() < 0.65 else ENGLISH)
    return {"id": f"m{number}", "text": f"{text} #{number} {rng.randrange(10**6)}",
            "created_at": (now - timedelta(minutes=rng.randrange(600))).isoformat(),
            "author": {"handle": f"customer{rng.randrange(number // 3 + 1)}",
                       "followers": rng.randrange(20_000)}}


def baseline_mb() -> float:
    """VmRSS of a bare Python that imported only the web and database libraries."""
    probe = ("import aiohttp, sqlalchemy, re; print(re.search(r'VmRSS:\\s+(\\d+)', "
             "open('/proc/self/status').read()).group(1))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    return int(out) / 1024


class Serve:
    """`listener serve` in a subprocess plus a client with the API token and a cookie."""

    def __init__(self, config: Path, port: int):
        self.config, self.base = config, f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"},
                                            cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def start(self) -> None:
        env = {**os.environ, "LISTENER_PASSWORD": PASSWORD}
        for command in (["migrate"], ["users", "add", "bench", "--role", "lead"]):
            subprocess.run([LISTENER, *command, "--config", str(self.config)], check=True,
                           capture_output=True, env=env)
        self.process = subprocess.Popen([LISTENER, "serve", "--config", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await signed_in(self.client, self.base, "bench", PASSWORD)

    async def stop(self) -> None:
        await self.client.close()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def memory(self) -> dict[str, float]:
        assert self.process is not None
        return rss_mb(self.process.pid)

    async def push(self, items: list[dict[str, object]]) -> None:
        body = json.dumps(items).encode()
        async with self.client.post(self.base + "/api/v1/webhooks/site-form", data=body,
                                    headers={SIGNATURE_HEADER: sign(SECRET, body),
                                             "Content-Type": "application/json"}) as response:
            assert response.status == 202, f"webhook: {response.status} {await response.text()}"

    async def get(self, path: str) -> None:
        async with self.client.get(self.base + path) as response:
            await response.read()
            assert response.status == 200, f"{path}: {response.status}"


READS = ("/api/v1/mentions", "/api/v1/mentions?status=new&channel=web",
         "/api/v1/mentions?q=kargo", "/api/v1/mentions?sla_state=at_risk&limit=200",
         "/api/v1/mentions/1", "/api/v1/sla/summary", "/api/v1/customers?q=customer1",
         "/metrics", "/api/v1/openapi.json", "/", "/queue/rows", "/mentions/1", "/team",
         "/reports", "/api/v1/sources", "/api/v1/agents")


async def burst(server: Serve, mentions: int, rounds: int) -> None:
    rng, now, pushed = Random(12), datetime.now(UTC), 0
    for _ in range(rounds):
        share = mentions // rounds
        for start in range(pushed, pushed + share, BATCH):
            await server.push([mention(rng, n, now) for n in range(start, start + BATCH)])
        pushed += share
        for path in READS:
            await server.get(path)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=2000,
                        help="TR/EN mentions pushed by webhook (default 2000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="push-then-read rounds the mentions are spread over")
    args = parser.parse_args()
    base = baseline_mb()
    with tempfile.TemporaryDirectory(prefix="listener-memory-") as folder:
        port = free_port()
        server = Serve(write_config(Path(folder), port), port)
        try:
            await server.start()
            await asyncio.sleep(1)  # let start-up jobs (gauges, timers) run once
            started = server.memory()
            await burst(server, args.mentions, args.rounds)
            after = server.memory()
            await asyncio.sleep(TRIM_SECONDS + 1)  # one more periodic trim
            settled = server.memory()
        finally:
            await server.stop()
    print(f"baseline (python + aiohttp + sqlalchemy): {base:.0f} MB")
    for label, value in (("after start-up", started["VmRSS"]),
                         (f"right after {args.mentions} TR/EN mentions + reads", after["VmRSS"]),
                         (f"{TRIM_SECONDS + 1}s later", settled["VmRSS"]),
                         ("peak (VmHWM)", settled["VmHWM"])):
        print(f"listener serve {label}: {value:.0f} MB ({value / base:.1f}x baseline)")
    verdict = "PASS" if settled["VmHWM"] <= TARGET_MB else "FAIL"
    print(f"target: peak ≤ {TARGET_MB} MB: {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
