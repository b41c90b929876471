"""Every secret in the config stays out of logs, error messages, API answers and pages,
even when an upstream echoes the credentials it was sent back in its error body."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml
from aiohttp import web
from pydantic import BaseModel, SecretStr

from listener.app import build_services, init_app, prepare_database
from listener.config import Config
from listener.redact import RedactingFilter, Redactor
from responders.alerts.outbox import AlertOutbox
from tests.conftest import BASE_CONFIG, make_config
from tests.test_serve import free_port, wait_ready
from tests.web.logins import login_as
from tests.web.test_api import mention, push

REPO = Path(__file__).resolve().parents[2]


def mark(key: str) -> str:
    """A secret value nobody could print by accident: its key plus a tag to grep for."""
    return f"zz{key.replace('_', '')}Q7secret"


def secret_keys(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Names of every SecretStr field reachable from `model`, sources and sinks included."""
    seen = seen if seen is not None else set()
    seen.add(model)
    found = set()
    for name, field in model.model_fields.items():
        stack = [field.annotation]
        while stack:
            kind = stack.pop()
            if kind is SecretStr:
                found.add(name)
            elif isinstance(kind, type) and issubclass(kind, BaseModel) and kind not in seen:
                found |= secret_keys(kind, seen)
            stack.extend(getattr(kind, "__args__", ()))
    return found


def polled_sources(upstream: str) -> list[dict[str, Any]]:
    """One source of each kind that takes a secret in the config, all pointed at `upstream`."""
    return [
        {"id": "x", "kind": "twitter", "query": "acme", "bearer_token": mark("bearer_token"),
         "consumer_key": mark("consumer_key"), "consumer_secret": mark("consumer_secret"),
         "access_token": mark("access_token"),
         "access_token_secret": mark("access_token_secret"), "base_url": upstream},
        {"id": "r", "kind": "reddit", "query": "acme", "client_id": "cid",
         "client_secret": mark("client_secret"), "username": "u", "password": mark("password"),
         "base_url": upstream, "oauth_url": upstream + "/oauth"},
        {"id": "m", "kind": "mastodon", "hashtag": "acme", "base_url": upstream,
         "access_token": mark("access_token")},
        {"id": "d", "kind": "discourse", "base_url": upstream + "/", "api_key": mark("api_key"),
         "api_username": "system"},
        {"id": "y", "kind": "youtube", "channel_id": "UC" + "x" * 22, "api_key": mark("api_key"),
         "client_id": "cid", "client_secret": mark("client_secret"),
         "refresh_token": mark("refresh_token"), "base_url": upstream,
         "token_url": upstream + "/token"},
        {"id": "f", "kind": "facebook", "page_id": "123", "access_token": mark("access_token"),
         "app_secret": mark("app_secret"), "verify_token": mark("verify_token"),
         "base_url": upstream},
        {"id": "i", "kind": "instagram", "account_id": "17841400000000000",
         "access_token": mark("access_token"), "app_secret": mark("app_secret"),
         "verify_token": mark("verify_token"), "base_url": upstream},
        {"id": "mail", "kind": "imap", "host": "127.0.0.1", "tls": "none", "timeout": "1s",
         "port": int(upstream.rsplit(":", 1)[1]), "username": "support@acme.example",
         "password": mark("password"), "smtp_password": mark("smtp_password"),
         "smtp_host": "127.0.0.1", "smtp_tls": "none", "send_replies": True,
         "from_address": "support@acme.example"},
    ]


def config_data(db_url: str, upstream: str, port: int = 8080) -> dict[str, Any]:
    return {
        **BASE_CONFIG, "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": [mark("api_tokens")],
                   "session_key": mark("session_key") * 2},
        "sources": [{"id": "site-form", "kind": "webhook", "secret": mark("secret")},
                    *polled_sources(upstream)],
        "alerts": [{"kind": "slack", "name": "slack", "on": ["breached"],
                    "webhook_url": f"{upstream}/services/{mark('webhook_url')}"},
                   {"kind": "webhook", "name": "hook", "on": ["breached"],
                    "url": f"{upstream}/{mark('url')}", "secret": mark("secret")}],
    }


SECRET_KEYS = {"bearer_token", "consumer_key", "consumer_secret", "access_token",
               "access_token_secret", "client_secret", "password", "api_key", "refresh_token",
               "app_secret", "verify_token", "api_tokens", "session_key", "secret",
               "webhook_url", "url", "smtp_password"}
MARKS = {mark(key) for key in SECRET_KEYS}


def assert_no_secret(text: str, where: str) -> None:
    leaked = sorted(m for m in MARKS if m in text)
    assert not leaked, f"{where} shows {leaked}"


async def echo(request: web.Request) -> web.Response:
    """A hostile upstream: refuses, and quotes everything it was sent in its error body."""
    said = f"{request.method} {request.path_qs} {dict(request.headers)} {await request.text()}"
    status = 401 if "oauth" in request.path or "token" in request.path else \
        500 if request.method == "POST" else 403
    return web.json_response({"error": said, "message": said, "errors": [said],
                              "error_description": said}, status=status)


@pytest.fixture
async def upstream(aiohttp_server: Any) -> str:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return str((await aiohttp_server(app)).make_url("")).rstrip("/")


def test_the_marked_keys_are_every_secret_the_config_has() -> None:
    """A new secret-bearing key fails here until it is added to the tests below."""
    assert secret_keys(Config) == SECRET_KEYS


async def test_an_echoing_upstream_never_gets_a_secret_into_logs_or_answers(
        aiohttp_client: Any, upstream: str, db_url: str, clock: Any, enricher: Any,
        caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    config = make_config(db_url, **{k: v for k, v in config_data(db_url, upstream).items()
                                    if k not in ("database", "timezone")})
    assert_no_secret(repr(config) + str(config.model_dump()), "the config's repr")
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    client = await aiohttp_client(init_app(services, background=False))
    outcomes = {s["id"]: await services.coordinator.poll(s["id"])
                for s in polled_sources(upstream)}
    assert set(outcomes.values()) <= {"error", "auth_failed", "rate_limited"}, outcomes
    assert (await push(client, [mention("s-1", channel="web")],
                       secret=mark("secret"))).status == 202
    clock.advance(timedelta(hours=9))
    assert await services.engine.fire_due(clock.now())
    outbox = AlertOutbox.from_config(config, services.store, services.metrics, clock)
    await outbox.run_once(clock.now())  # the upstream refuses, quoting the URL it was sent
    await outbox.close()
    token = {"Authorization": f"Bearer {mark('api_tokens')}"}
    for path in ("/api/v1/sources", "/api/v1/alerts", "/metrics", "/readyz"):
        response = await client.get(path, headers=token)
        assert response.status == 200, path
        assert_no_secret(await response.text(), path)
    bad = await client.get("/api/v1/sources", headers={"Authorization": "Bearer nope"})
    assert_no_secret(await bad.text(), "a refused token's answer")
    await login_as(client, services, role="admin")
    for page in ("/", "/sources", "/settings"):
        assert_no_secret(await (await client.get(page)).text(), page)
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]  # the fake's own log
    assert_no_secret("\n".join(r.getMessage() + str(r.exc_info) for r in ours), "the log")


def listener(*args: str, **popen: Any) -> Any:
    return subprocess.Popen([sys.executable, "-m", "listener", *args], cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **popen)


def test_check_config_names_bad_secret_keys_without_their_values(tmp_path: Path) -> None:
    data = config_data("sqlite+aiosqlite:///unused.db", "http://127.0.0.1:9")
    data["sources"][1]["bearer_token"] = [mark("bearer_token")]       # wrong type
    data["sources"][2]["client_secret"] = {"v": mark("client_secret")}
    data["sources"][0]["secret"] = mark("secret") + "\x00"
    data["server"]["session_key"] = mark("session_key")[:5]           # too short
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    checked = listener("check-config", str(path), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    out, err = checked.communicate(timeout=60)
    assert checked.returncode != 0 and "bearer_token" in err, err
    assert_no_secret(out + err, "check-config")


async def test_a_running_server_logs_no_secret(tmp_path: Path, upstream: str,
                                               db_url: str) -> None:
    """`listener serve` polling the echoing upstream, answering a Meta handshake whose
    verify_token sits in the URL, refusing bad tokens and signatures: its whole log is clean."""
    port = free_port()
    path = tmp_path / "listener.yaml"
    path.write_text(yaml.safe_dump(config_data(db_url, upstream, port)), encoding="utf-8")
    log = (tmp_path / "serve.log").open("wb")
    process = listener("serve", "--config", str(path), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, process, tmp_path)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/api/v1/webhooks/f", params={
                    "hub.mode": "subscribe", "hub.verify_token": mark("verify_token"),
                    "hub.challenge": "42"}) as shaken:
                assert await shaken.text() == "42"
            async with session.post(f"{base}/api/v1/webhooks/site-form", data=b"{}",
                                    headers={"X-Listener-Signature": "sha256=00"}) as refused:
                assert refused.status == 401
            async with session.get(f"{base}/api/v1/sources", headers={
                    "Authorization": f"Bearer {mark('api_tokens')}"}) as listed:
                assert_no_secret(await listed.text(), "/api/v1/sources")
        deadline = time.monotonic() + 20
        while "is failing" not in (tmp_path / "serve.log").read_text() and \
                time.monotonic() < deadline:
            await asyncio.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert "is failing" in text
    assert_no_secret(text, "the serve log")


def test_the_log_filter_redacts_messages_and_tracebacks() -> None:
    """What `listener serve` installs on its log handlers, for failures nobody foresaw."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter(Redactor([mark("access_token"),
                                                f"https://hooks.example/{mark('url')}"])))
    logger = logging.getLogger("tests.hostile.redaction")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"upstream said: bad token {quote(mark('access_token'))}")
        except RuntimeError:
            logger.exception("poll of %s failed", f"/{mark('url')}?x=1")
    finally:
        logger.removeHandler(handler)
    assert "poll of ***?x=1 failed" in out.getvalue() and "bad token ***" in out.getvalue()
    assert_no_secret(out.getvalue(), "a redacted log")
