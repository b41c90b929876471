"""An app review's star rating: carried by the pushed/replayed item format, and speaking
louder than the words for sentiment and priority."""

from __future__ import annotations

import pytest

from connectors.webhook import ItemError, parse_item
from listener.pipeline.enrich import Enricher

ITEM = {"id": "r1", "text": "ok", "created_at": "2026-11-23T09:00:00+03:00",
        "channel": "app_review", "author": {"handle": "deniz"}}


def test_the_item_format_carries_a_rating_of_one_to_five_stars() -> None:
    assert parse_item({**ITEM, "rating": 2})[0].rating == 2
    assert parse_item(ITEM)[0].rating is None
    for wrong in (0, 6, 4.5, True, "5"):
        with pytest.raises(ItemError, match="rating"):
            parse_item({**ITEM, "rating": wrong})


def test_one_or_two_stars_is_a_complaint_whatever_the_words(enricher: Enricher) -> None:
    polite = "Thank you, lovely colours and a very kind team."
    assert enricher.enrich(polite).sentiment > 0
    for stars in (1, 2):
        rated = enricher.enrich(polite, rating=stars)
        assert rated.sentiment <= -0.3 and rated.priority in ("high", "urgent")
    assert enricher.enrich(polite, rating=4).sentiment == enricher.enrich(polite).sentiment


def test_five_stars_with_neutral_words_is_praise_but_angry_words_still_count(
        enricher: Enricher) -> None:
    assert enricher.enrich("Uygulama", hint_lang="tr", rating=5).sentiment >= 0.3
    angry = "Rezalet, sipariş gelmedi, berbat"
    assert enricher.enrich(angry, rating=5).sentiment == enricher.enrich(angry).sentiment
