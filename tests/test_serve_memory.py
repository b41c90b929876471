"""`listener serve` loads a connector's heavy third-party library only when a source of
that kind is configured: every import stays resident for the life of the process, and
the server has to fit in 300 MB next to the language models.

The real `listener serve` runs in a subprocess that writes its `sys.modules` when it
exits (SIGTERM, as systemd or Docker stop it), after taking a webhook and serving pages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from connectors.webhook import SIGNATURE_HEADER, sign
from tests.test_serve import free_port, wait_ready

pytestmark = pytest.mark.slow
SECRET = "memory-test-secret"
# library → what needs it; none of these may be loaded by a server that has none of them
HEAVY = {
    "tweepy": "twitter sources",
    "requests": "twitter sources (through tweepy)",
    "jwt": "app_store sources",
    "feedparser": "rss sources",
    "google.auth": "google_play sources",
    "aiosmtplib": "imap sources that reply",
    "apprise": "apprise alert sinks",
    "schemathesis": "tests only",
    "hypothesis": "tests only",
}
SERVE_AND_LIST_MODULES = """
import atexit, json, sys
from listener.cli import main
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(sorted(sys.modules))))
sys.exit(main(["serve", "--config", sys.argv[2]]))
"""


def write_config(tmp_path: Path, port: int, sources: list[dict[str, Any]]) -> Path:
    config = {
        "timezone": "Europe/Istanbul",
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/listener.db"},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": ["t"]},
        "sources": [{"id": "hook", "kind": "webhook", "secret": SECRET}, *sources],
        "agents": [{"id": "ayse", "channels": ["web"], "max_open": 1000}],
        "sla": {"policies": [{"name": "standard", "first_response": "4h"}]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


async def modules_after_serving(tmp_path: Path, sources: list[dict[str, Any]]) -> set[str]:
    """Start serve, push a TR/EN webhook batch, read the API and the metrics, stop it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    listing = tmp_path / "modules.json"
    config = write_config(tmp_path, port, sources)
    with (tmp_path / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE_AND_LIST_MODULES, str(listing), str(config)],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        await wait_ready(base, process, tmp_path)
        body = json.dumps([
            {"id": "1", "text": "Siparişim hâlâ gelmedi, iade istiyorum",
             "created_at": "2026-03-02T09:00:00+03:00", "author": {"handle": "ayse"}},
            {"id": "2", "text": "Where is my order? It has been a week",
             "created_at": "2026-03-02T09:01:00+03:00", "author": {"handle": "bob"}},
        ]).encode()
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as client:
            async with client.post(f"{base}/api/v1/webhooks/hook", data=body, headers={
                    SIGNATURE_HEADER: sign(SECRET, body)}) as response:
                assert response.status == 202, await response.text()
            for path in ("/api/v1/mentions", "/metrics", "/api/v1/openapi.json", "/login"):
                async with client.get(base + path) as response:
                    assert response.status == 200, path
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert listing.exists(), (tmp_path / "serve.log").read_text()
    return set(json.loads(listing.read_text()))


def loaded(modules: set[str], library: str) -> bool:
    return library in modules or any(m.startswith(library + ".") for m in modules)


async def test_serve_with_webhooks_only_loads_no_other_connectors_libraries(
        tmp_path: Path) -> None:
    modules = await modules_after_serving(tmp_path, [])

    assert "lingua" in modules  # the listing is real: serve detected the languages
    unneeded = {lib: why for lib, why in HEAVY.items() if loaded(modules, lib)}
    assert unneeded == {}, f"loaded without a source needing them: {unneeded}"


async def test_a_configured_twitter_source_loads_its_library(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: polls fail, serve runs
    twitter = {"id": "x", "kind": "twitter", "query": "acme", "bearer_token": "b",
               "base_url": closed, "interval": "1h"}

    modules = await modules_after_serving(tmp_path, [twitter])

    assert loaded(modules, "tweepy")
    assert not loaded(modules, "feedparser") and not loaded(modules, "jwt")
