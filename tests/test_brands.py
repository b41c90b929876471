"""Whose brand a mention is about: the source's word first, then ours when the text names
us (our brand wins ties), then the competitor named first, else ours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import RawAuthor, RawItem
from listener.brands import OURS, Brands
from listener.config import ConfigError, parse_config

COMPETITORS = [
    {"name": "rival", "handles": {"twitter": ["rival"], "mastodon": ["@Rival"]},
     "keywords": ["rival", "rival kargo"]},
    {"name": "Paketçi", "keywords": ["paketçi", "paket ci express"]},
    {"name": "Kargo Plus", "keywords": ["rival kargo plus"]},
]


def brands(**overrides: Any) -> Brands:
    data: dict[str, Any] = {
        "sources": [{"id": "form", "kind": "webhook", "secret": "s"},
                    {"id": "rival-search", "kind": "webhook", "secret": "s", "brand": "rival"},
                    {"id": "ours-search", "kind": "webhook", "secret": "s", "brand": "ours"}],
        "brand_accounts": {"twitter": ["acme"], "reddit": ["acme_support"]},
        "brand_keywords": ["acme", "acme express"],
        "competitors": COMPETITORS,
        **overrides,
    }
    return Brands.from_config(parse_config(data))


def item(text: str, channel: str = "twitter", handle: str = "ali") -> RawItem:
    return RawItem(external_id="1", text=text, created_at=datetime(2026, 11, 23, tzinfo=UTC),
                   channel=channel, author=RawAuthor(handle))


@pytest.mark.parametrize(("text", "channel", "expected"), [
    ("Kargom üç gündür yolda", "forum", OURS),                     # nothing named
    ("rival lost my parcel again", "forum", "rival"),
    ("RİVAL KARGO'ya bir daha asla", "forum", "rival"),           # Turkish capital İ
    ("Rıval kargo rezalet", "forum", "rival"),                     # dotless ı typed for i
    ("Rival'e geçtim, #rival daha hızlı", "forum", "rival"),
    ("rivalry between couriers is fierce", "forum", OURS),        # not a whole word
    ("PAKETÇİ gene geç kaldı", "forum", "Paketçi"),
    ("paketci   gene geç kaldı", "forum", "Paketçi"),              # ç typed as c
    ("@rival where is my parcel?", "twitter", "rival"),
    ("@rival where is my parcel?", "reddit", "rival"),          # still the keyword
    ("@Rival hello", "mastodon", "rival"),
    ("@rivalco where is my parcel?", "twitter", OURS),           # another account
    ("write to support@rivalco.example", "forum", OURS),
    # our brand wins ties, wherever it is named
    ("rival is slow but acme is slower", "forum", OURS),
    ("Rival kargo vs @acme: both late", "twitter", OURS),
    ("ACME EXPRESS mı, Rival mi?", "forum", OURS),
    ("@acme_support is that you?", "twitter", OURS),            # not our twitter handle...
    # ... and not a keyword either: "acme_support" is one word, so rival decides
    ("@acme_support rival did better", "twitter", "rival"),
    # two competitors: the one named first; at the same place, the first configured
    ("paketçi, then rival: both lost it", "forum", "Paketçi"),
    ("rival kargo plus lost it", "forum", "rival"),
])
def test_the_text_decides_when_the_source_does_not(text: str, channel: str,
                                                   expected: str) -> None:
    assert brands().brand_of(item(text, channel), "form", "webhook") == expected


@pytest.mark.parametrize("channel", ["web", "email", "phone", "chat"])
def test_whoever_writes_to_us_directly_is_ours_whatever_they_name(channel: str) -> None:
    """A contact form, the support mailbox, a call: they wait for our answer."""
    decide = brands().brand_of
    assert decide(item("Rival kargo daha hızlı, siparişimi iptal edin", channel), "form",
                  "webhook") == OURS
    assert decide(item("Rival kargo rezalet", channel), "rival-search", "webhook") == "rival"


def test_a_handle_is_looked_up_by_channel_and_by_source_kind() -> None:
    decide = brands().brand_of
    complaint = item("@rival where is my parcel?", channel="x-search")
    assert decide(complaint, "form", "twitter") == "rival"  # a twitter source's own channel
    # keyed by neither: "@rival" is then only the keyword
    assert decide(item("@rival hello", channel="x-search"), "form", "webhook") == "rival"
    only_handle = brands(competitors=[{"name": "rival", "handles": {"twitter": ["rvl"]}}])
    assert only_handle.brand_of(item("@rvl hi", channel="x-search"), "form", "twitter") == \
        "rival"
    assert only_handle.brand_of(item("@rvl hi", channel="x-search"), "form", "webhook") == OURS


def test_a_source_that_declares_its_brand_wins_over_the_text() -> None:
    decide = brands().brand_of
    assert decide(item("@acme lost my parcel"), "rival-search", "webhook") == "rival"
    assert decide(item("rival lost my parcel"), "ours-search", "webhook") == OURS


def test_without_competitors_everything_is_ours() -> None:
    plain = brands(competitors=[], brand_keywords=[], sources=[])
    assert plain.names == [OURS]
    assert plain.brand_of(item("rival kargo rezalet"), "form", "webhook") == OURS
    assert Brands().brand_of(item("anything"), "form", "webhook") == OURS


def test_the_report_lists_ours_then_the_competitors_in_config_order() -> None:
    assert brands().names == [OURS, "rival", "Paketçi", "Kargo Plus"]


def test_a_post_by_a_brands_own_account_is_that_brand_talking() -> None:
    watched = brands()
    assert watched.own_post(item("Yeni şubemiz açıldı", handle="Rival"), "rival", "twitter")
    assert watched.own_post(item("Hello", channel="mastodon", handle="rival"), "rival",
                            "mastodon")
    assert not watched.own_post(item("rival ok", handle="ali"), "rival", "twitter")
    assert not watched.own_post(item("hi", channel="reddit", handle="rival"), "rival",
                                "reddit")
    assert watched.own_post(item("hi", handle="acme"), OURS, "twitter")
    assert not watched.own_post(item("hi", handle="acme"), "gone", "twitter")


def problems(**data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_competitor_names_are_unique_and_not_ours() -> None:
    found = problems(competitors=[{"name": "rival"}, {"name": "Rival"}, {"name": "OURS"}])
    assert [path for path, _ in found] == ["competitors[1].name", "competitors[2].name"]
    assert "used twice" in found[0][1] and "our own brand" in found[1][1]
    [(path, _)] = problems(competitors=[{"name": "rival <b>"}])
    assert path == "competitors[0].name"


def test_a_source_brand_must_be_ours_or_a_competitor() -> None:
    [(path, message)] = problems(
        competitors=[{"name": "rival"}],
        sources=[{"id": "a", "kind": "webhook", "secret": "s", "brand": "rivals"}])
    assert path == "sources[0].brand"
    assert "'rivals'" in message and "'ours'" in message and "'rival'" in message


def test_an_empty_keyword_is_refused() -> None:
    [(path, message)] = problems(competitors=[{"name": "rival", "keywords": ["rival", " "]}])
    assert path == "competitors[0].keywords[1]" and "empty" in message
    [(path, _)] = problems(brand_keywords=[""])
    assert path == "brand_keywords[0]"


TEXTS = ("acme", "@acme iade", "rival", "@Rival kargo", "ACME EXPRESS", "hiç", "", "paketçi")


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("channel", ["twitter", "reddit", "web", "mastodon"])
@pytest.mark.parametrize("handle", ["ali", "acme", "@ACME_support", "rival"])
def test_shortcuts_agree_with_the_full_rule(text: str, channel: str, handle: str) -> None:
    """Without competitors every mention is ours (the text is not read); a competitor
    that names nothing and owns nothing gives the same verdicts the long way. Asked
    twice, so `handles_on`'s remembered answers are read too."""
    form = [{"id": "form", "kind": "webhook", "secret": "s"}]
    plain = brands(competitors=[], sources=form)
    inert = brands(competitors=[{"name": "inert", "keywords": []}], sources=form)
    mention = item(text, channel, handle)
    for _ in range(2):
        assert plain.brand_of(mention, "form", "webhook") == \
            inert.brand_of(mention, "form", "webhook") == OURS
        for brand in (OURS, "inert"):
            assert plain.own_post(mention, brand, "webhook") == \
                inert.own_post(mention, brand, "webhook")
    ours_there = {"twitter": "acme", "reddit": "acme_support"}.get(channel)
    assert plain.own_post(mention, OURS, "webhook") == \
        (handle.lstrip("@").casefold() == ours_there)
