"""Enrichment answers pinned exactly, so a change made for speed cannot move any answer.

enrichment_pinned.jsonl holds answers recorded before the enrichment was made faster:
labelled mentions with and without a language tag, star rating and big reach, generated
`bench/ingest.py` mentions, word salads of lexicon words, negators, idioms, sarcasm,
quotes, ALL CAPS and Turkish suffixes, and the hostile texts (NUL, markup, bidi marks).
A change that means to change answers re-records the file and says why; one that only
means to be faster must leave it alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from listener.pipeline.enrich import Enricher, Enrichment

PINNED = [json.loads(line) for line in
          (Path(__file__).parent / "enrichment_pinned.jsonl").read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


def test_the_pinned_set_covers_what_it_should() -> None:
    answers = [row["answer"] for row in PINNED if "enrich" in row]
    assert len(answers) >= 300 and len(PINNED) - len(answers) >= 100
    assert {priority for _, _, priority in answers} == {"urgent", "high", "normal", "low"}
    assert {lang for lang, _, _ in answers} >= {"tr", "en", None}


def test_enrich_many_gives_the_pinned_answers(enricher: Enricher) -> None:
    rows = [row for row in PINNED if "enrich" in row]
    got = enricher.enrich_many([tuple(row["enrich"]) for row in rows])
    wrong = [(row["enrich"][0][:60], row["answer"], found)
             for row, found in zip(rows, got, strict=True) if found != Enrichment(*row["answer"])]
    assert not wrong


def test_one_at_a_time_gives_the_pinned_answers_too() -> None:
    """Fresh caches and one text per call: no answer depends on what came before."""
    fresh = Enricher()
    for row in [row for row in PINNED if "enrich" in row][::3]:
        text, followers, hint, rating = row["enrich"]
        assert fresh.enrich(text, followers, hint, rating) == Enrichment(*row["answer"])


def test_sentiment_scores_are_pinned_per_language(enricher: Enricher) -> None:
    rows = [row for row in PINNED if "score" in row]
    wrong = [(row["score"], row["answer"], enricher.sentiment(*row["score"])) for row in rows
             if enricher.sentiment(*row["score"]) != row["answer"]]
    assert not wrong
