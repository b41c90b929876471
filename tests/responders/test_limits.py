"""Reply lengths are counted the way each platform counts them, against its limit."""

from __future__ import annotations

from responders.limits import LENGTH_LIMITS, measure

LONG_LINK = "https://shop.example.com/orders/track?id=" + "9" * 80


def test_x_counts_a_link_as_23_so_a_reply_with_a_long_link_still_fits() -> None:
    text = "a" * 250 + " " + LONG_LINK
    assert len(text) > 280
    counted = measure("twitter", text)
    assert counted.length == 250 + 1 + 23 and counted.limit == 280 and not counted.over
    assert measure("x", text).length == counted.length


def test_x_counts_emoji_as_two_and_turkish_letters_as_one() -> None:
    assert measure("twitter", "Çok üzgünüz, ığşöç").length == 18
    assert measure("twitter", "Teşekkürler 🙏").length == 12 + 2
    assert measure("twitter", "x" * 279 + "🙏").over
    assert not measure("twitter", "x" * 278 + "🙏").over


def test_a_link_ends_before_trailing_punctuation() -> None:
    assert measure("twitter", "see https://acme.com/a.").length == 4 + 23 + 1


def test_mastodon_counts_links_as_23_and_remote_mentions_by_the_user_part() -> None:
    counted = measure("mastodon", "@deniz@mastodon.social bakıyoruz " + LONG_LINK)
    assert counted.length == len("@deniz bakıyoruz ") + 23 and counted.limit == 500


def test_other_channels_count_every_character_and_email_has_no_limit() -> None:
    review = measure("google_play", "ü" * 351)
    assert review.over and review.limit == 350 and review.length == 351
    assert measure("reddit", LONG_LINK).length == len(LONG_LINK)
    letter = measure("email", "x" * 100_000)
    assert letter.limit is None and not letter.over
    assert measure("unknown-channel", "hi").limit is None


def test_limits_can_be_overridden_per_channel() -> None:
    limits = {**LENGTH_LIMITS, "complaints": 10, "twitter": None}
    assert measure("complaints", "x" * 11, limits).over
    assert not measure("twitter", "x" * 1000, limits).over
    decomposed = "e\u0301" * 10  # é typed as e + combining accent is one character
    assert measure("complaints", decomposed, limits).length == 10
