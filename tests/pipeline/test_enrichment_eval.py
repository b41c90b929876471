"""How often the real enricher gets a labelled set of Turkish and English mentions right.

The set (tests/fixtures/enrichment/eval.jsonl) is hand-written: complaints, praise,
questions, sarcasm, negation, mixed Turkish/English and emoji. A mention counts as
negative at <= -0.3 and positive at >= 0.3, the same cut the queue's priority uses.
The lexicon's rules were tuned on eval.jsonl, so its figures flatter it. heldout.jsonl
was written after the first tuning; its misses (idioms like "rip-off", "bloke etti",
"hung up on me") then steered a second round, done by writing new mentions of the same
kinds into eval.jsonl and fixing word families and rules, never by listing held-out
sentences. Still, it has been looked at, so its figures flatter too. fresh.jsonl was
written before that second round and never looked at miss by miss: its figures are the
honest ones (keep it that way: fix a miss there only by adding a mention of its kind to
eval.jsonl first, and write a new untouched set when it has been used).
The thresholds are what the current lexicon reaches, rounded down a little: a change
that makes the care team's "is this an angry customer?" worse fails here.
Run with `-s` to see the figures and the confusion matrix.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from listener.pipeline.enrich import NEGATIVE, POSITIVE, Enricher

FIXTURES = Path(__file__).parent.parent / "fixtures" / "enrichment"
LABELS = ("negative", "neutral", "positive")
# set: (language accuracy, sentiment sign accuracy, negative recall), all "at least"
THRESHOLDS = {
    "eval": (0.98, 0.98, 0.98),  # measured 372/377, 374/377, 188/190
    "heldout": (0.98, 0.97, 0.97),  # measured 90/90, 90/90, 43/43 (69/90, 29/43 before)
    "fresh": (0.98, 0.82, 0.65),  # measured 90/90, 75/90, 29/43 (72/90, 26/43 before)
}


def sign(score: float) -> str:
    return "negative" if score <= NEGATIVE else "positive" if score >= POSITIVE else "neutral"


def load(name: str) -> list[dict]:
    text = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


@pytest.fixture(scope="module", params=sorted(THRESHOLDS))
def results(request: pytest.FixtureRequest, enricher: Enricher
            ) -> tuple[str, list[tuple[dict, str | None, str]]]:
    rows = load(request.param)
    out = []
    for row in rows:
        found = enricher.enrich(row["text"])
        out.append((row, found.lang, sign(found.sentiment)))
    return request.param, out


def report(results: list[tuple[dict, str | None, str]]) -> str:
    matrix = Counter((row["sentiment"], got) for row, _, got in results)
    lines = ["expected \\ got  " + "  ".join(f"{label:>8}" for label in LABELS)]
    for expected in LABELS:
        cells = "  ".join(f"{matrix[(expected, got)]:>8}" for got in LABELS)
        lines.append(f"{expected:>14}  {cells}")
    misses = [f"  {row['sentiment']:>8} got {got:>8}: {row['text'][:90]}"
              for row, _, got in results if got != row["sentiment"]]
    return "\n".join([*lines, "misses:", *misses])


def test_the_sets_are_big_varied_and_apart() -> None:
    rows, heldout, fresh = load("eval"), load("heldout"), load("fresh")
    assert len(rows) >= 300 and len(heldout) >= 80 and len(fresh) >= 80
    texts = [{row["text"] for row in found} for found in (rows, heldout, fresh)]
    assert [len(t) for t in texts] == [len(rows), len(heldout), len(fresh)]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]
    counts = Counter((row["lang"], row["sentiment"]) for row in rows)
    assert set(counts) == {(lang, label) for lang in ("tr", "en") for label in LABELS}
    assert min(counts.values()) >= 30


def test_language_accuracy(results: tuple[str, list[tuple[dict, str | None, str]]]) -> None:
    name, results = results
    right = sum(lang == row["lang"] for row, lang, _ in results)
    misses = [row["text"][:80] for row, lang, _ in results if lang != row["lang"]]
    print(f"\n{name} language accuracy: {right}/{len(results)} = {right / len(results):.3f}")
    assert right / len(results) >= THRESHOLDS[name][0], misses


def test_sentiment_sign_accuracy(
        results: tuple[str, list[tuple[dict, str | None, str]]]) -> None:
    name, results = results
    right = sum(got == row["sentiment"] for row, _, got in results)
    print(f"\n{name} sentiment accuracy: {right}/{len(results)} = {right / len(results):.3f}")
    print(report(results))
    assert right / len(results) >= THRESHOLDS[name][1]


def test_angry_customers_are_found(
        results: tuple[str, list[tuple[dict, str | None, str]]]) -> None:
    """Recall on complaints matters most: a missed complaint misses its deadline."""
    name, results = results
    negatives = [got for row, _, got in results if row["sentiment"] == "negative"]
    recall = negatives.count("negative") / len(negatives)
    print(f"\n{name} negative recall: {recall:.3f}")
    assert recall >= THRESHOLDS[name][2]


def test_batches_score_the_sets_as_one_at_a_time(
        results: tuple[str, list[tuple[dict, str | None, str]]]) -> None:
    """The ingest path enriches in batches (cached, parallel language detection): the
    figures above hold for it too."""
    _, results = results
    batch = Enricher().enrich_many([(row["text"], None, None, None) for row, _, _ in results])
    assert [(found.lang, sign(found.sentiment)) for found in batch] == [
        (lang, got) for _, lang, got in results]
