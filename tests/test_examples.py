"""The demo data set is what a new user loads first: it must be valid SPEC §4 input and
look like a real morning (both languages, many channels, returning customers)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from listener.pipeline.enrich import Enricher

MENTIONS = Path(__file__).resolve().parents[1] / "examples" / "mentions.jsonl"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with MENTIONS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_enough_lines(rows: list[dict]) -> None:
    assert len(rows) >= 300


def test_every_line_has_the_webhook_shape(rows: list[dict]) -> None:
    for row in rows:
        assert {"id", "text", "created_at", "url", "channel", "author", "source"} <= row.keys()
        for key in ("id", "text", "created_at", "url", "channel", "source"):
            assert isinstance(row[key], str) and row[key], (row["id"], key)
        author = row["author"]
        assert isinstance(author["handle"], str) and author["handle"]
        assert isinstance(author["name"], str) and author["name"]
        assert isinstance(author.get("followers", 0), int)
        assert isinstance(author.get("email", ""), str)


def test_times_have_an_offset_and_ascend(rows: list[dict]) -> None:
    times = [datetime.fromisoformat(row["created_at"]) for row in rows]
    assert all(t.utcoffset() is not None for t in times)
    assert times == sorted(times)


def test_ids_are_unique(rows: list[dict]) -> None:
    assert len({row["id"] for row in rows}) == len(rows)


def test_many_channels(rows: list[dict]) -> None:
    assert len({row["channel"] for row in rows}) >= 6


def test_turkish_and_english_both_present() -> None:
    enricher = Enricher()
    with MENTIONS.open(encoding="utf-8") as fh:
        langs = Counter(enricher.detect_language(json.loads(line)["text"]) for line in fh)
    total = sum(langs.values())
    assert langs["tr"] >= 0.25 * total
    assert langs["en"] >= 0.25 * total


def test_customers_come_back_on_other_channels(rows: list[dict]) -> None:
    channels: defaultdict[str, set[str]] = defaultdict(set)
    for row in rows:
        channels[row["author"]["name"]].add(row["channel"])
    assert sum(len(seen) > 1 for seen in channels.values()) >= 10


def test_hostile_texts_are_included(rows: list[dict]) -> None:
    texts = [row["text"] for row in rows]
    assert sum("<" in t or "&" in t for t in texts) >= 3
    assert any("<script>" in t for t in texts)
