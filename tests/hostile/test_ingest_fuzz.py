"""`listener ingest` on JSONL full of hostile lines, on SQLite and PostgreSQL: each bad line
is reported with its number and skipped, every good line is stored, nothing crashes."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from listener.ingest_file import ingest_file
from tests.hostile.strategies import FUZZ, NASTY_TEXT, hostile_leaf
from tests.test_cli import write_config
from tests.test_serve import stored_ids

REPO = Path(__file__).resolve().parents[2]
FIELDS = ("id", "text", "created_at", "channel", "url", "author", "lang", "rating")
NUMBERS = itertools.count(1)


def good_line(ident: str, text: str = "Kargom nerede?") -> dict[str, Any]:
    return {"id": ident, "text": text, "created_at": "2026-11-23T09:30:00+03:00",
            "channel": "twitter", "author": {"handle": f"h{ident}", "name": "Ali"}}


@st.composite
def hostile_line(draw: st.DrawFn) -> bytes:
    """A real line with one field swapped for a hostile value, or a line that is not JSON."""
    obj = good_line(f"bad-{next(NUMBERS)}")
    kind = draw(st.sampled_from(("field", "author", "raw")))
    if kind == "raw":
        return draw(st.sampled_from([
            b"{", b"[" * 3000 + b"]" * 3000, b"\xff\xfe\x00", b'{"id": ' + b"9" * 5000 + b"}",
            b"[]", b"null", b"42", b'"\\ud800"', json.dumps([obj]).encode()]))
    target = obj if kind == "field" else obj["author"]
    target[draw(st.sampled_from(FIELDS if kind == "field" else ("handle", "followers")))] = \
        draw(hostile_leaf())
    return json.dumps(target if kind == "field" else obj).encode()


@FUZZ
@given(lines=st.lists(st.one_of(hostile_line(), st.sampled_from(NASTY_TEXT).map(
    lambda text: ("good", text))), min_size=1, max_size=8))
async def test_each_bad_line_is_named_and_skipped_and_good_lines_are_stored(
        services: Any, tmp_path: Path, lines: list[Any], capsys: Any) -> None:
    written, good = [], set()
    for line in lines:
        if isinstance(line, tuple):  # a well-formed mention whose text is hostile
            ident = f"good-{next(NUMBERS)}"
            good.add(ident)
            line = json.dumps(good_line(ident, line[1] or "boş")).encode()
        written.append(line)
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(written) + b"\n")

    report = await ingest_file(services, path, None, progress=False)

    assert report.lines == len(written)
    assert len(report.bad_lines) + report.stored + report.duplicates == report.lines
    good_numbers = {n for n, line in enumerate(written, 1) if b'"good-' in line}
    assert not good_numbers & {number for number, _ in report.bad_lines}
    assert all(reason for _, reason in report.bad_lines)
    assert "Traceback" not in capsys.readouterr().err


def test_a_hostile_file_through_the_real_command(tmp_path: Path, db_url: str) -> None:
    lines = [json.dumps(good_line("ok-1", NASTY_TEXT[0] + "NUL in text")).encode(),
             b"[" * 5000 + b"]" * 5000,
             json.dumps(good_line("ok-2", "\u202e<script>alert(1)</script>")).encode(),
             json.dumps({**good_line("x"), "author": {"handle": "\ud800"}}).encode(),
             json.dumps({**good_line("y"), "rating": 10**400}).encode(),
             b'{"id": "z", "text": "\xff"}',
             json.dumps(good_line("ok-3", "x" * 60_000)).encode()]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    config = write_config(tmp_path, db_url)
    result = subprocess.run([sys.executable, "-m", "listener", "ingest", "--config",
                             str(config), str(path)], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "3 stored" in result.stdout and "4 rejected" in result.stdout
    assert sorted(int(n) for n in re.findall(r"line (\d+): skipped", result.stderr)) == \
        [2, 4, 5, 6]
    assert asyncio.run(stored_ids(db_url)) == {"ok-1", "ok-2", "ok-3"}
