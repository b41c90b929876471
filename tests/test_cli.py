"""The `listener` commands as an operator runs them: real subprocesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from listener import db
from listener.models import Mention
from listener.store import Store
from tests.conftest import BASE_CONFIG, IST
from tests.test_serve import free_port

REPO = Path(__file__).resolve().parents[1]
MONDAY_1630 = datetime(2026, 11, 23, 16, 30, tzinfo=IST)


def listener(*args: str, timeout: float = 60,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "listener", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(tmp_path: Path, db_url: str, **overrides: Any) -> Path:
    data = {
        **BASE_CONFIG,
        "database": {"url": db_url},
        "sources": [
            {"id": "site-form", "kind": "webhook", "secret": "s3cret-hook"},
            {"id": "demo", "kind": "replay", "path": "examples/mentions.jsonl", "enabled": False},
        ],
        **overrides,
    }
    path = tmp_path / "listener.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def line(ident: str, created_at: datetime, channel: str = "twitter", **extra: Any) -> str:
    obj = {
        "id": ident,
        "text": f"Siparişim {ident} hâlâ gelmedi, yardım eder misiniz?",
        "channel": channel,
        "created_at": created_at.isoformat(),
        "url": f"https://x.com/musteri/status/{ident}",
        "author": {"handle": f"musteri{ident}", "name": "Müşteri"},
        **extra,
    }
    return json.dumps(obj, ensure_ascii=False)


def stored_mentions(db_url: str) -> list[Mention]:
    async def fetch() -> list[Mention]:
        store = Store.open(db_url)
        try:
            async with store.read() as session:
                return list(await session.scalars(select(Mention).order_by(Mention.id)))
        finally:
            await store.close()

    return asyncio.run(fetch())


def test_migrate_prints_the_head_revision_and_can_run_twice(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    head = db.head_revision()
    assert head
    for _ in range(2):
        result = listener("migrate", "--config", str(config))
        assert result.returncode == 0, result.stderr
        assert f"revision {head}" in result.stdout
    assert stored_mentions(db_url) == []


BAD_LINES = {
    10: "{not json at all",
    25: json.dumps({"id": "no-author", "text": "hi", "created_at": MONDAY_1630.isoformat()}),
    40: json.dumps(
        {
            "id": "naive",
            "text": "hi",
            "created_at": "2026-11-23T09:15:00",
            "author": {"handle": "a"},
        }
    ),
}


def jsonl_with_bad_lines(path: Path) -> set[str]:
    """53 lines: 50 valid mentions (twitter and web) and the three BAD_LINES."""
    lines: list[str] = []
    good: set[str] = set()
    for number in range(1, 54):
        if number in BAD_LINES:
            lines.append(BAD_LINES[number])
            continue
        ident = f"b-{number}"
        good.add(ident)
        created = MONDAY_1630 - timedelta(minutes=number)
        lines.append(line(ident, created, channel="twitter" if number % 2 else "web"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return good


# `--batch-size 7`: the 53 lines go in eight transactions, with the same outcome.
@pytest.mark.parametrize("batches", [[], ["--batch-size", "7"]], ids=["default", "small"])
def test_ingest_stores_good_lines_names_bad_ones_and_reruns_as_duplicates(
    tmp_path: Path, db_url: str, batches: list[str]
) -> None:
    config = write_config(tmp_path, db_url)
    data = tmp_path / "backfill.jsonl"
    good = jsonl_with_bad_lines(data)
    assert len(good) == 50

    first = listener("ingest", "--config", str(config), "--source", "demo", *batches,
                     str(data))
    assert first.returncode == 0, first.stderr
    assert "50 stored" in first.stdout
    assert "3 rejected" in first.stdout
    assert "0 duplicates" in first.stdout
    reported = {int(n) for n in re.findall(r"line (\d+): skipped", first.stderr)}
    assert reported == set(BAD_LINES)
    assert re.search(r"line 25: skipped: .*author", first.stderr)
    assert re.search(r"line 40: skipped: .*created_at", first.stderr)

    again = listener("ingest", "--config", str(config), "--source", "demo", *batches,
                     str(data))
    assert again.returncode == 0, again.stderr
    assert "0 stored" in again.stdout
    assert "50 duplicates" in again.stdout

    mentions = stored_mentions(db_url)
    assert {m.external_id for m in mentions} == good
    assert {m.source for m in mentions} == {"demo"}
    by_id = {m.external_id: m for m in mentions}
    # Same pipeline as live sources: enriched, with the SLA clock started at created_at.
    # (Not asserting assignees: who is on shift depends on the wall clock of the run.)
    assert by_id["b-1"].sla_policy == "social-same-day"
    assert by_id["b-2"].sla_policy == "same-day"
    assert all(m.deadline_at is not None for m in mentions)
    assert {m.lang for m in mentions} == {"tr"}
    assert by_id["b-1"].created_at == MONDAY_1630 - timedelta(minutes=1)


def test_ingest_refuses_a_batch_of_nothing_and_names_its_default(tmp_path: Path) -> None:
    from listener.ingest_file import BATCH_SIZE

    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/listener.db")
    for wrong in ("0", "-5", "ten"):
        refused = listener("ingest", "--config", str(config), "--batch-size", wrong, "x.jsonl")
        assert refused.returncode == 2
        assert f"--batch-size: '{wrong}' is not a whole number of lines above 0" in \
            refused.stderr
    helped = listener("ingest", "--help")
    assert f"(default {BATCH_SIZE:,})" in " ".join(helped.stdout.split())


def test_ingest_takes_each_lines_source_and_survives_odd_bytes(tmp_path: Path, db_url: str) -> None:
    """Without --source each line's `source` is used; a BOM (Windows exports) is fine, a
    blank line is not a line, and a line that is not UTF-8 is one rejected line, not a crash."""
    config = write_config(tmp_path, db_url)
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(
        b"\xef\xbb\xbf"
        + line("s-1", MONDAY_1630, source="site-form").encode()
        + b"\n\n\xff\xfe not utf-8\n"
        + line("s-2", MONDAY_1630).encode()
        + b"\n"
    )
    result = listener("ingest", "--config", str(config), str(data))
    assert result.returncode == 0, result.stderr
    assert "2 stored" in result.stdout
    assert "1 rejected" in result.stdout
    assert re.findall(r"line (\d+): skipped", result.stderr) == ["3"]
    assert "Traceback" not in result.stderr
    sources = {m.external_id: m.source for m in stored_mentions(db_url)}
    assert sources == {"s-1": "site-form", "s-2": "ingest"}


def test_ingest_of_a_missing_file_fails_clearly(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/listener.db")
    for path, reason in ((tmp_path / "nope.jsonl", "no such file"), (tmp_path, "is a directory")):
        result = listener("ingest", "--config", str(config), str(path))
        assert result.returncode != 0
        assert f"cannot read {path}" in result.stderr
        assert reason in result.stderr.lower()
        assert "stored" not in result.stdout  # no "0 stored" summary that reads like success
        assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_clear_line_without_the_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://listener:pw-secret-1@127.0.0.1:1/listener"
    config = write_config(tmp_path, url, server={"port": free_port()})
    data = tmp_path / "one.jsonl"
    data.write_text(line("x-1", MONDAY_1630) + "\n", encoding="utf-8")
    for command in (
        ["migrate", "--config", str(config)],
        ["ingest", "--config", str(config), str(data)],
        ["sla", "explain", "--config", str(config), "1"],
        ["serve", "--config", str(config)],
    ):
        result = listener(*command)
        assert result.returncode == 1, (command, result.stderr)
        assert "database error" in result.stderr
        assert "127.0.0.1:1" in result.stderr
        assert "Traceback" not in result.stderr
        assert "pw-secret-1" not in result.stdout + result.stderr


def test_serve_on_a_busy_port_says_so_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/l.db",
                              server={"port": port})
        result = listener("serve", "--config", str(config))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "server.port" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "l.db").exists()


def test_sla_explain_shows_the_policy_and_calendar_steps(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    data = tmp_path / "one.jsonl"
    data.write_text(line("late-tweet", MONDAY_1630) + "\n", encoding="utf-8")
    ingested = listener("ingest", "--config", str(config), str(data))
    assert ingested.returncode == 0, ingested.stderr
    [mention] = stored_mentions(db_url)
    assert mention.deadline_at == datetime(2026, 11, 24, 18, 0, tzinfo=IST)

    result = listener("sla", "explain", "--config", str(config), str(mention.id))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()

    def first_line_with(*words: str) -> int:
        found = [i for i, text in enumerate(lines) if all(w in text for w in words)]
        assert found, f"no line with {words} in:\n{out}"
        return found[0]

    assert "social-same-day" in out
    posted = first_line_with("16:30")  # when the customer posted
    cutoff = first_line_with("cutoff", "16:00")  # why it is not due today
    due = first_line_with("2026-11-24", "18:00")  # closing time of the next business day
    assert "Tuesday" in out
    assert posted < cutoff < due  # the steps in the order they were applied


def test_sla_explain_of_an_unknown_mention_fails_clearly(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    assert listener("migrate", "--config", str(config)).returncode == 0
    result = listener("sla", "explain", "--config", str(config), "424242")
    assert result.returncode != 0
    assert "424242" in result.stdout + result.stderr
    assert "does not exist" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_source_kind_it_does_not_know(tmp_path: Path, db_url: str) -> None:
    config = write_config(
        tmp_path,
        db_url,
        sources=[{"id": "news", "kind": "rss", "url": "https://example.com/feed.xml"},
                 {"id": "gram", "kind": "telegram", "url": "https://t.me/acme"}],
        server={"host": "127.0.0.1", "port": 1},  # never reached: it must fail before binding
    )
    started = time.monotonic()
    result = listener("serve", "--config", str(config), timeout=30)
    assert result.returncode == 2
    assert time.monotonic() - started < 20
    assert "sources[1].kind: unknown source kind 'telegram'" in result.stderr
    assert "rss" in result.stderr and "sources[0]" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["ingest", "x.jsonl"]])
def test_commands_reject_an_invalid_config_with_exit_2(tmp_path: Path, command: list[str]) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/never.db"
    config = write_config(tmp_path, db_url, timezone="Mars/Olympus")
    result = listener(command[0], "--config", str(config), *command[1:])
    assert result.returncode == 2
    assert "timezone:" in result.stderr
    assert not (tmp_path / "never.db").exists()


def test_serve_no_migrate_on_an_old_schema_tells_what_to_run(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/l.db",
                          server={"port": free_port()})
    result = listener("serve", "--no-migrate", "--config", str(config))
    assert result.returncode == 1
    assert "listener migrate" in result.stderr
    assert "Traceback" not in result.stderr
