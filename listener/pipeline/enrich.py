"""Enrichment stage: language, sentiment and priority for one mention.

Everything here is offline and deterministic: lingua for language (its models ship with
the wheel) and the small hand-written Turkish and English lexicon in
`listener.pipeline.sentiment`, because the service runs without internet and a care team
needs "is this an angry customer?" more than fine-grained scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

from listener.pipeline.sentiment import MAX_CHARS, NOISE, Sentiment, fold, lower

__all__ = ["Enricher", "Enrichment", "fold", "lower"]

DETECT_CHARS = 1_000
NEGATIVE = -0.3
POSITIVE = 0.3
BIG_REACH = 10_000
DEFAULT_LANGUAGES = ("tr", "en", "de", "fr", "es", "ar", "ru")
LANGUAGE_CACHE = 20_000
CACHED_TEXT = 280
"""Detected languages kept per cleaned text (retweets and copy-paste complaints repeat),
for texts up to a tweet long so the cache stays a few MB."""
WARM_UP = "Siparişim nerede? Where is my order?"
"""Detected once at start-up, so lingua loads its Latin-script models then (about 170 MB)
and not on the first real mention. Lazily: Arabic and Cyrillic text is told by its
script alone, so their models are never loaded (preloading them all cost 70 MB more)."""

URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
RISK = re.compile(
    r"\b(avukat\w*|tuketici hakem|hakem heyeti|tuketici mahkeme\w*|dava\w*|mahkeme\w*"
    r"|cimer|btk|kvkk|savcilig\w*|polis\w*|dolandir\w*|yangin\w*|yaralan\w*|zehirlen\w*"
    r"|elektrik carp\w*|patladi|duman|hack\w*|calindi|veri ihlal\w*|numarami tasi\w*"
    r"|lawyer\w*|attorney|legal action|sue|sued|suing|lawsuit|refund now|scam\w*|fraud\w*"
    r"|police|fire|injur\w*|poison\w*|explod\w*|stolen|data breach|gdpr|chargeback"
    r"|cancel my (?:account|subscription|contract)|switching to)\b"
)
SPAM = re.compile(
    r"\b(kazan\w*|bedava|free followers|takipci\w*|crypto|kripto|bitcoin|airdrop"
    r"|click here|tikla\w*|dm for promo|dm me for|promo code|casino|bahis|deneme bonus\w*"
    r"|iddaa|forex|make money|onlyfans|follow back)\b"
)


PRIORITIES = ("urgent", "high", "normal", "low")  # most urgent first


def at_least(priority: str, floor: str | None) -> str:
    """`priority`, raised to `floor` when that is more urgent; never lowered."""
    if floor is None:
        return priority
    return min(priority, floor, key=PRIORITIES.index)


EnrichInput = tuple[str, int | None, str | None, int | None]
"""(text, followers, lang_hint, rating), as `Enricher.enrich` takes them."""


@dataclass(frozen=True)
class Enrichment:
    lang: str | None
    sentiment: float
    priority: str


def _to_language(code: str) -> Language:
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except ValueError:
        raise ValueError(f"unknown ISO 639-1 language code: {code!r}") from None


class Enricher:
    """Built once by the app factory (building the lingua detector is the slow part)."""

    def __init__(self, languages: Sequence[str] = DEFAULT_LANGUAGES) -> None:
        self._detector = (
            LanguageDetectorBuilder.from_languages(*(_to_language(c) for c in languages))
            .with_minimum_relative_distance(0.05)
            .build()
        )
        self._detector.detect_language_of(WARM_UP)
        self._known: dict[str, str | None] = {}
        self._sentiment = Sentiment()

    def detect_language(self, text: str) -> str | None:
        """None when there is too little text to tell; Turkish-only letters (ğ, ı, ş)
        still answer "tr" for a short post lingua will not commit on."""
        return self.detect_languages([text])[0]

    def detect_languages(self, texts: Sequence[str]) -> list[str | None]:
        """`detect_language` for many texts: texts seen before come from a cache, the
        rest go to lingua in one call that spreads them over all cores."""
        cleaned = [_detectable(text) for text in texts]
        known = self._known
        todo = list({c: None for c in cleaned if c is not None and c not in known})
        found = dict(zip(todo, self._detect(todo), strict=True))
        answers = [None if c is None else found[c] if c in found else known[c] for c in cleaned]
        if len(known) + len(found) > LANGUAGE_CACHE:  # after reading: cached answers go too
            known.clear()
        known.update((c, lang) for c, lang in found.items() if len(c) <= CACHED_TEXT)
        return answers

    def _detect(self, cleaned: list[str]) -> list[str | None]:
        if len(cleaned) == 1:
            found = [self._detector.detect_language_of(cleaned[0])]
        else:
            found = self._detector.detect_languages_in_parallel_of(cleaned) if cleaned else []
        return [_code(language, text) for language, text in zip(found, cleaned, strict=True)]

    def sentiment(self, text: str, lang: str | None) -> float:
        """-1 (angry) .. 1 (pleased); see `listener.pipeline.sentiment`."""
        return self._sentiment.score(text, lang)

    def priority(self, text: str, sentiment: float, followers: int | None) -> str:
        """Triage rule, first match wins:

        1. "low"    spam-like: two spam markers (kazan, bedava, crypto, click here, ...),
                    or one marker plus a link, or three links, unless clearly negative;
        2. "urgent" negative (<= -0.3) and a legal/safety/churn word (avukat, tüketici
                    hakem heyeti, dava, lawyer, sue, scam, yangın, fire, hack, ...), or
                    negative with a reach of 10k+ followers;
        3. "high"   negative (<= -0.3), or 10k+ followers;
        4. "low"    praise (>= 0.3) that asks nothing (no "?");
        5. "normal" everything else (questions, neutral remarks).
        Spam goes first so that a spammer with many followers never jumps the queue.
        """
        reach = (followers or 0) >= BIG_REACH
        negative = sentiment <= NEGATIVE
        if not negative:  # each pattern is searched only when its answer can matter
            flat = fold(lower(text[:MAX_CHARS], None))
            links = len(URL.findall(flat)) if "http" in flat or "www." in flat else 0
            markers = len(set(SPAM.findall(flat)))
            if markers >= 2 or (markers and links) or links >= 3:
                return "low"
        elif reach or RISK.search(fold(lower(text[:MAX_CHARS], None))):
            return "urgent"
        if negative or reach:
            return "high"
        if sentiment >= POSITIVE and "?" not in text:
            return "low"
        return "normal"

    def enrich(
        self, text: str, followers: int | None = None, hint_lang: str | None = None,
        rating: int | None = None,
    ) -> Enrichment:
        """A source's own language tag (X's "lang") beats guessing from a few words,
        but only when it is a real two-letter code ("und", "qme" and "zxx" are not).
        An app review's star `rating` speaks louder than its words: see `rated`."""
        return self.enrich_many([(text, followers, hint_lang, rating)])[0]

    def enrich_many(self, inputs: Sequence[EnrichInput]) -> list[Enrichment]:
        """`enrich` for a batch of (text, followers, lang_hint, rating), in input order;
        the languages nobody tagged are detected together (see `detect_languages`)."""
        texts = [text or "" for text, _, _, _ in inputs]
        hinted = [_hinted(hint) for _, _, hint, _ in inputs]
        untagged = [t for t, h in zip(texts, hinted, strict=True) if h is None]
        guess = iter(self.detect_languages(untagged))
        return [
            self._enriched(text, followers, hint or next(guess), rating)
            for text, hint, (_, followers, _, rating) in zip(texts, hinted, inputs, strict=True)
        ]

    def _enriched(self, text: str, followers: int | None, lang: str | None,
                  rating: int | None) -> Enrichment:
        sentiment = rated(self.sentiment(text, lang), rating)
        priority = self.priority(text, sentiment, followers)
        if rating is not None and rating <= COMPLAINT_STARS:
            priority = at_least(priority, "high")
        return Enrichment(lang, sentiment, priority)


def _hinted(hint: str | None) -> str | None:
    """A source's tag when it is a real two-letter code, else None (detect instead)."""
    if hint and len(hint) == 2 and hint.isascii() and hint.isalpha():
        return hint.lower()
    return None


def _detectable(text: str) -> str | None:
    """The text lingua should see (links, handles and tags out), or None when fewer than
    three letters are left to tell a language by."""
    cleaned = NOISE.sub(" ", (text or "")[:DETECT_CHARS])
    letters = 0
    for ch in cleaned:  # stops at the third letter, not at the end of the text
        if ch.isalpha():
            letters += 1
            if letters == 3:
                return cleaned
    return None


def _code(found: Language | None, cleaned: str) -> str | None:
    if found is not None:
        return found.iso_code_639_1.name.lower()
    if any(ch in "ğĞıİşŞ" for ch in cleaned):
        return "tr"
    return None


COMPLAINT_STARS = 2


def rated(sentiment: float, rating: int | None) -> float:
    """One or two stars is a complaint whatever the words say ("thanks, but it crashes"
    is still a 1-star review other customers read): the sentiment is at most the negative
    threshold, so the priority is at least high. Five stars with neutral words ("ok",
    "uygulama") is praise: the positive threshold. Three or four stars, or five with
    angry words, leave the words to decide."""
    if rating is None:
        return sentiment
    if rating <= COMPLAINT_STARS:
        return min(sentiment, NEGATIVE)
    if rating == 5 and NEGATIVE < sentiment < POSITIVE:
        return POSITIVE
    return sentiment
