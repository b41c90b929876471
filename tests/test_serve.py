"""`listener serve` as a real process: signals, durability of accepted webhooks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import select

from connectors.webhook import sign
from listener.models import Mention
from listener.store import Store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SECRET = "kill-test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path: Path, db_url: str, port: int) -> Path:
    config = {
        "timezone": "Europe/Istanbul",
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": ["t"]},
        "sources": [{"id": "hook", "kind": "webhook", "secret": "${HOOK_SECRET}"}],
        "agents": [{"id": "ayse", "channels": ["web"], "max_open": 100000}],
        "sla": {"policies": [{"name": "same-day", "first_response": "same_day"}]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start(config: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    log = (tmp_path / "serve.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "listener", "serve", "--config", str(config)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "HOOK_SECRET": SECRET},
    )


async def wait_ready(base: str, process: subprocess.Popen[bytes], tmp_path: Path) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail("serve exited early:\n" + (tmp_path / "serve.log").read_text())
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail("serve did not become ready:\n" + (tmp_path / "serve.log").read_text())


async def launch(db_url: str, tmp_path: Path, port: int | None = None
                 ) -> tuple[subprocess.Popen[bytes], str, int]:
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(write_config(tmp_path, db_url, port), tmp_path)
    await wait_ready(base, process, tmp_path)
    return process, base, port


def batch(prefix: str, size: int) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i}", "text": f"Order {prefix}/{i} has not arrived, please help",
             "created_at": "2026-11-23T09:30:00+03:00", "channel": "web",
             "author": {"handle": f"{prefix}-{i}", "name": "Customer"}} for i in range(size)]


async def push(session: aiohttp.ClientSession, base: str, items: list[dict[str, Any]]) -> int:
    body = json.dumps(items).encode()
    async with session.post(f"{base}/api/v1/webhooks/hook", data=body,
                            headers={"X-Listener-Signature": sign(SECRET, body)}) as response:
        await response.read()
        return response.status


async def stored_ids(db_url: str) -> set[str]:
    store = Store.open(db_url)
    try:
        async with store.read() as session:
            return set(await session.scalars(select(Mention.external_id)))
    finally:
        await store.close()


async def test_sigkill_while_pushing_loses_no_accepted_batch_and_keeps_no_half_batch(
        db_url: str, tmp_path: Path) -> None:
    process, base, port = await launch(db_url, tmp_path)
    accepted: list[str] = []
    attempted: list[str] = []

    async def pusher(worker: int) -> None:
        async with aiohttp.ClientSession() as session:
            for n in range(10_000):
                prefix = f"w{worker}b{n}"
                attempted.append(prefix)
                try:
                    if await push(session, base, batch(prefix, 20)) == 202:
                        accepted.append(prefix)
                except (aiohttp.ClientError, ConnectionError):
                    return

    pushers = [asyncio.create_task(pusher(w)) for w in range(4)]
    await asyncio.sleep(3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    await asyncio.wait_for(asyncio.gather(*pushers), timeout=30)

    ids = await stored_ids(db_url)
    assert len(accepted) >= 5, "the test did not push enough to mean anything"
    for prefix in accepted:
        assert all(f"{prefix}-{i}" in ids for i in range(20)), f"accepted batch {prefix} lost"
    for prefix in attempted:
        present = sum(f"{prefix}-{i}" in ids for i in range(20))
        assert present in (0, 20), f"batch {prefix} half stored ({present}/20)"

    process, _, _ = await launch(db_url, tmp_path, port)
    try:
        async with aiohttp.ClientSession() as session:
            assert await push(session, base, batch(accepted[0], 20)) == 202
        assert await stored_ids(db_url) >= ids
        assert len(await stored_ids(db_url)) == len(ids)  # re-push of an accepted batch
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_sigterm_finishes_the_request_in_flight_and_exits_zero(
        db_url: str, tmp_path: Path) -> None:
    process, base, _ = await launch(db_url, tmp_path)
    big = batch("big", 3000)
    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(push(session, base, big))
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(request, timeout=60)
    code = await asyncio.to_thread(process.wait, 60)
    assert status == 202
    assert code == 0, (tmp_path / "serve.log").read_text()
    assert len(await stored_ids(db_url)) == 3000
