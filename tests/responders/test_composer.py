"""Reply drafts: every channel gets every intent in Turkish and English, in its tone and
within its length limit; what customers wrote is never run as template code."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.sandbox import SecurityError

from connectors import CONNECTORS
from listener.models import Author, Customer, Mention
from listener.pipeline.enrich import Enricher
from responders.composer import Composer
from responders.drafts import INTENTS, LANGS, BadTemplate, ToneTemplates, UnknownTemplate

CHANNELS = (*CONNECTORS, "email", "web")
OWN_FOLDERS = ("twitter", "email", "web")
FORMAL_CHANNELS = ("rss", "html", "webhook", "replay", "imap", "email", "web", "google_play",
                   "app_store", "app_review")


@pytest.fixture
def composer() -> Composer:
    return Composer(brand_name="Acme", source_kinds={"forum-src": "discourse"})


def mention(channel: str = "twitter", text: str = "Siparişim gelmedi", lang: str = "tr",
            source: str = "src") -> Mention:
    return Mention(channel=channel, source=source, text=text, lang=lang,
                   url="https://example.com/1")


def author(name: str = "Deniz Kaya", handle: str = "deniz") -> Author:
    return Author(channel="twitter", handle=handle, name=name)


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_drafts_every_intent_in_both_languages_within_its_limit(
        composer: Composer, enricher: Enricher, channel: str) -> None:
    for intent in INTENTS:
        for lang in LANGS:
            draft = composer.render(mention(channel, lang=lang), None, "Ayşe", intent, lang,
                                    author=author())
            where = f"{channel} {intent} {lang}: {draft.text!r}"
            assert draft.lang == lang and draft.intent == intent, where
            assert enricher.detect_language(draft.text) == lang, where
            assert not draft.over and draft.length > 20, where
            folder = channel if channel in OWN_FOLDERS else (
                "formal" if channel in FORMAL_CHANNELS else "social")
            assert draft.template_path == f"templates/tones/{folder}/{intent}.{lang}.j2"
            if channel in FORMAL_CHANNELS:  # salutation and the brand's sign-off
                assert draft.text.startswith(("Sayın Deniz Kaya,", "Dear Deniz Kaya,")), where
                assert draft.text.endswith("\nAcme"), where
            else:  # warm and brief, first name only
                assert "Deniz" in draft.text and "Kaya" not in draft.text, where
                assert not draft.text.startswith(("Sayın", "Dear")), where
                assert draft.length <= 280, where


def test_x_replies_address_the_author_and_email_is_signed_by_the_agent(
        composer: Composer) -> None:
    tweet = composer.render(mention("twitter"), None, None, "apology", "tr", author=author())
    assert tweet.text.startswith("@deniz ") and tweet.limit == 280
    letter = composer.render(mention("email"), None, "Ayşe", "resolved", "tr",
                             author=author())
    assert letter.text.endswith("Saygılarımızla,\nAyşe\nAcme")
    unsigned = composer.render(mention("email"), None, None, "resolved", "en",
                               author=author())
    assert unsigned.text.endswith("Kind regards,\nAcme")  # no empty line for a missing agent
    nameless = composer.render(mention("web"), None, None, "thanks", "tr", author=None)
    assert nameless.text.startswith("Sayın Müşterimiz,")


def test_info_still_drafts_need_more_info_for_older_clients(composer: Composer) -> None:
    old = composer.render(mention("mastodon"), None, None, "info", "en", author=author())
    new = composer.render(mention("mastodon"), None, None, "need-more-info", "en",
                          author=author())
    assert old == new and old.intent == "need-more-info"
    assert "info" not in composer.intents()


def test_a_language_without_templates_falls_back_to_english(composer: Composer) -> None:
    draft = composer.render(mention("reddit", lang="de"), None, None, "thanks", None,
                            author=author())
    assert draft.lang == "en" and draft.text.startswith("Thank you")
    with pytest.raises(UnknownTemplate, match="templates/tones/reddit/"):
        composer.render(mention("reddit"), None, None, "refund", "tr", author=author())


def test_a_channel_named_otherwise_uses_its_source_kinds_tone_and_limit(
        composer: Composer) -> None:
    draft = composer.render(mention("forum", source="forum-src"), None, None, "apology", "tr",
                            author=author())
    assert draft.template_path == "templates/tones/social/apology.tr.j2"
    assert draft.limit == 32_000


def test_language_beats_folder_when_looking_up_a_template(tmp_path: Path) -> None:
    """A channel folder with only English must not hide the group's Turkish template."""
    (tmp_path / "mastodon").mkdir()
    (tmp_path / "social").mkdir()
    (tmp_path / "mastodon" / "thanks.en.j2").write_text("Thanks from Mastodon")
    (tmp_path / "social" / "thanks.tr.j2").write_text("Teşekkürler")
    composer = Composer(templates=ToneTemplates(tmp_path))
    turkish = composer.render(mention("mastodon"), None, None, "thanks", "tr")
    assert turkish.text == "Teşekkürler" and turkish.lang == "tr"
    english = composer.render(mention("mastodon"), None, None, "thanks", "en")
    assert english.text == "Thanks from Mastodon"
    assert composer.intents() == (*INTENTS,)


def test_template_syntax_in_what_customers_wrote_is_printed_not_run(
        composer: Composer) -> None:
    body = "{{ mention.author.name }} wrote: {{ mention.text }} ({{ customer.name }})"
    overrides = {("twitter", "thanks", "en"): body}
    hostile = "{{ 7*7 }} {% for x in range(3) %}x{% endfor %} {{ mention.__class__ }}"
    customer = Customer(display_name="{{ brand.name }}", segment="vip")
    draft = composer.render(mention(text=hostile), customer, None, "thanks", "en",
                            author=author(name="{{ 6*7 }}"), overrides=overrides)
    assert draft.text == f"{{{{ 6*7 }}}} wrote: {hostile} ({{{{ brand.name }}}})"
    assert "49" not in draft.text and "42" not in draft.text and "Acme" not in draft.text


def test_markup_and_control_characters_never_reach_a_draft(composer: Composer) -> None:
    draft = composer.render(mention("email"), None, "Ayşe", "thanks", "en",
                            author=author(name="<b>Eve</b>\x1b[31m"))
    assert draft.text.startswith("Dear bEve/b[31m,")


def test_the_sandbox_blocks_reaching_python_internals(composer: Composer) -> None:
    escape = "{{ mention.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(SecurityError):
        composer.render(mention(), None, None, "thanks", "en",
                        overrides={("twitter", "thanks", "en"): escape})
    with pytest.raises(BadTemplate, match="is unsafe"):
        composer.check(escape, "twitter", "thanks", "en")
    with pytest.raises(BadTemplate):
        composer.check("{{ ''.__class__.__base__ }}", "twitter", "thanks", "en")


def test_an_unknown_customer_leaves_customer_fields_empty(composer: Composer) -> None:
    body = "Hi {{ customer.name }}! {% if customer %}known{% else %}new{% endif %}"
    overrides = {("social", "thanks", "en"): body}
    draft = composer.render(mention("reddit"), None, None, "thanks", "en", author=author(),
                            overrides=overrides)
    assert draft.text == "Hi ! new" and draft.template_path == "override:social/thanks.en"
    known = composer.render(mention("reddit"), Customer(display_name="Deniz K", segment=None),
                            None, "thanks", "en", author=author(), overrides=overrides)
    assert known.text == "Hi Deniz K! known"


def test_check_refuses_broken_templates_and_previews_good_ones(composer: Composer) -> None:
    with pytest.raises(BadTemplate, match="line 2"):
        composer.check("Hello\n{% if mention.text %}no end", "twitter", "thanks", "en")
    with pytest.raises(BadTemplate, match="agnet"):
        composer.check("Thanks {{ agnet.name }}", "twitter", "thanks", "en")
    with pytest.raises(BadTemplate, match="customer is not known"):
        composer.check("{{ customer.name.upper() }}", "twitter", "thanks", "en")
    preview = composer.check("@{{ mention.author.handle }} Teşekkürler "
                             "{{ mention.author.first_name }}! {{ mention.text }} "
                             "– {{ agent.name }}", "twitter", "thanks", "tr", agent="Ayşe")
    assert preview.text.startswith("@deniz_y Teşekkürler Deniz! Siparişim")
    assert "{{ 7*7 }}" in preview.text and preview.text.endswith("– Ayşe")
    assert preview.limit == 280 and not preview.over
    too_long = composer.check("x" * 300, "twitter", "thanks", "en")
    assert too_long.over and too_long.length == 300
