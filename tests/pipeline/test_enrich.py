"""What an agent notices in the queue: language tag, sentiment sign and priority."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listener.pipeline.enrich import Enricher, Enrichment, lower

PRIORITIES = {"urgent", "high", "normal", "low"}


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


# -------------------------------------------------------------------------- complaints
@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("@acme siparişim 5 gündür gelmedi, rezalet!", "tr"),
        ("Kargom 3 gündür dağıtımda, kimse cevap vermiyor. Mağdur edildim.", "tr"),
        ("Uygulama güncellemeden sonra çalışmıyor, ödeme ekranında donuyor", "tr"),
        ("@acme Kadıköy mağazası personeli çok kabaydı", "tr"),
        ("Worst service ever, my package never arrived 😡", "en"),
        ("@acme you charged my card twice and support is ignoring me. Unacceptable.", "en"),
        ("The app doesn't work after the update", "en"),
    ],
)
def test_complaint_is_negative_and_high(enricher: Enricher, text: str, lang: str) -> None:
    result = enricher.enrich(text, followers=120)
    assert result.lang == lang
    assert result.sentiment <= -0.3
    assert result.priority == "high"


@pytest.mark.parametrize("text", ["kargom nerede??", "siparişim gelmedi", "iadem yatmadı"])
def test_short_turkish_is_detected(enricher: Enricher, text: str) -> None:
    assert enricher.detect_language(text) == "tr"


def test_turkish_typed_without_turkish_letters(enricher: Enricher) -> None:
    assert enricher.enrich("tesekkurler, cok memnunum").sentiment > 0.3
    assert enricher.enrich("sikayetimi kimse dikkate almiyor").sentiment < -0.3


# ----------------------------------------------------------------------------- urgent
@pytest.mark.parametrize(
    "text",
    [
        "Siparişim 10 gündür gelmedi, rezalet! Tüketici hakem heyetine başvuracağım.",
        "Paramı iade etmiyorsunuz, dolandırıcı mısınız? Avukatıma veriyorum.",
        "This is a scam, I'm calling my lawyer. Refund now.",
        "Your charger caught fire and I got a burn injury. Terrible.",
    ],
)
def test_legal_or_safety_threat_is_urgent(enricher: Enricher, text: str) -> None:
    assert enricher.enrich(text, followers=50).priority == "urgent"


def test_big_reach_complaint_is_urgent_and_big_reach_question_is_high(
    enricher: Enricher,
) -> None:
    assert enricher.enrich("@acme berbat bir deneyim, kargo kayıp", followers=48_200).priority == (
        "urgent"
    )
    assert enricher.enrich("@acme kapıda ödeme var mı?", followers=48_200).priority == "high"


# ---------------------------------------------------------------- praise and questions
@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Siparişim ertesi gün geldi, çok memnunum. Teşekkürler Acme! 🙏", "tr"),
        ("Canlı destekteki arkadaş süperdi, sabırla yardımcı oldu 😍", "tr"),
        ("Thanks Acme, super fast delivery and great packaging 😍", "en"),
        ("Love the new app, checkout is so easy now ❤️", "en"),
    ],
)
def test_praise_is_positive_and_low(enricher: Enricher, text: str, lang: str) -> None:
    result = enricher.enrich(text, followers=300)
    assert result.lang == lang
    assert result.sentiment >= 0.3
    assert result.priority == "low"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Kapıda ödeme seçeneği var mı?", "tr"),
        ("Kargo takip numarası nereden bakılır?", "tr"),
        ("Do you ship to Northern Cyprus?", "en"),
        ("Can I get my invoice as a PDF?", "en"),
    ],
)
def test_question_is_neutral_and_normal(enricher: Enricher, text: str, lang: str) -> None:
    result = enricher.enrich(text)
    assert result.lang == lang
    assert abs(result.sentiment) < 0.3
    assert result.priority == "normal"


def test_praise_with_a_question_still_needs_an_answer(enricher: Enricher) -> None:
    assert enricher.enrich("Harika ürün, teşekkürler! Aynısından var mı?").priority == "normal"


def test_email_greetings_and_sign_offs_are_not_praise(enricher: Enricher) -> None:
    text = "İyi günler,\n\nFaturamı e-posta ile alabilir miyim?\n\nSaygılarımla,\nAyşe"
    assert enricher.enrich(text).sentiment == 0
    assert enricher.enrich("Hi,\n\nWhere is order AC123?\n\nThanks,\nTom").sentiment == 0


# ------------------------------------------------------------------------------- spam
@pytest.mark.parametrize(
    "text",
    [
        "FREE FOLLOWERS 🔥 click here https://free-followers.example/go",
        "Bedava takipçi kazanmak için tıkla: https://kazan.example/x",
        "Make money from home with crypto, DM for promo",
        "Best deals https://a.example/1 https://b.example/2 https://c.example/3",
    ],
)
def test_spam_is_low_even_with_many_followers(enricher: Enricher, text: str) -> None:
    assert enricher.enrich(text, followers=90_000).priority == "low"


def test_complaint_mentioning_a_won_prize_is_not_spam(enricher: Enricher) -> None:
    text = "Kampanyada kazandığım hediye çeki 2 haftadır gelmedi, rezalet https://x.com/a/1"
    assert enricher.enrich(text).priority == "high"


# --------------------------------------------------------------------------- negation
@pytest.mark.parametrize(
    "text",
    ["I am not happy with this", "not good at all", "memnun değilim", "hiç memnun değilim",
     "yardımcı olmadınız", "tavsiye etmiyorum", "uygulama çalışmıyor", "kargo gelmedi",
     "my order never arrived", "no response from support"],
)  # fmt: skip
def test_negation_makes_it_a_complaint(enricher: Enricher, text: str) -> None:
    assert enricher.enrich(text).sentiment < -0.25


@pytest.mark.parametrize(
    "text",
    ["not bad", "not bad at all, thanks", "fena değil", "sorun yok",
     "hiçbir sorun yaşamadım", "no problem, thanks"],
)  # fmt: skip
def test_negated_complaint_is_not_a_complaint(enricher: Enricher, text: str) -> None:
    assert enricher.enrich(text).sentiment > -0.1


def test_refund_not_made_stays_negative(enricher: Enricher) -> None:
    assert enricher.enrich("iki kere çekilen tutar hâlâ iade edilmedi").sentiment < -0.3


# ------------------------------------------------------------------ emphasis and emoji
def test_intensifier_caps_and_exclamations_make_it_stronger(enricher: Enricher) -> None:
    plain = enricher.sentiment("this is bad", "en")
    assert enricher.sentiment("this is very bad", "en") < plain
    assert enricher.sentiment("this is BAD", "en") < plain
    assert enricher.sentiment("this is bad!!!", "en") < plain
    assert enricher.sentiment("berbaaaat", "tr") == enricher.sentiment("berbat", "tr")


def test_emoji_only_has_sentiment_but_no_language(enricher: Enricher) -> None:
    angry, happy = enricher.enrich("😡😡😡"), enricher.enrich("👍❤️")
    assert angry.lang is None and angry.sentiment < -0.5 and angry.priority == "high"
    assert happy.lang is None and happy.sentiment > 0.3


def test_but_weighs_the_second_half(enricher: Enricher) -> None:
    assert enricher.enrich("kargo hızlıydı ama paket hasarlı geldi").sentiment < 0
    assert enricher.enrich("delivery was late but the support was great").sentiment > 0


# ---------------------------------------------------------------- language and casing
def test_source_language_tag_is_trusted_only_when_real(enricher: Enricher) -> None:
    assert enricher.enrich("ok", hint_lang="TR").lang == "tr"
    assert enricher.enrich("Where is my order?", hint_lang="und").lang == "en"
    assert enricher.enrich("siparişim gelmedi", hint_lang="qme").lang == "tr"


def test_urls_handles_and_hashtags_do_not_decide_the_language(enricher: Enricher) -> None:
    text = "@acme_support_team siparişim nerede https://www.example.com/track/where-is-it #help"
    assert enricher.detect_language(text) == "tr"
    assert enricher.detect_language("@acme https://x.com/a/status/1 #kargo") is None


def test_turkish_aware_lowering() -> None:
    assert lower("IĞDIR İADE", "tr") == "ığdır iade"
    assert lower("I WANT İSTANBUL", "en") == "i want istanbul"


def test_caps_turkish_complaint(enricher: Enricher) -> None:
    result = enricher.enrich("İADE İSTİYORUM, REZALET!!!")
    assert result.lang == "tr"
    assert result.sentiment < -0.5


def test_unknown_language_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="xx"):
        Enricher(languages=("tr", "xx"))


def test_result_is_a_small_frozen_value(enricher: Enricher) -> None:
    result = enricher.enrich("Teşekkürler Acme, harika!")
    assert isinstance(result, Enrichment)
    assert result.sentiment == round(result.sentiment, 3)
    with pytest.raises(AttributeError):
        result.priority = "urgent"  # type: ignore[misc]


# -------------------------------------------------------------------------- hostility
@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "??",
        "<script>alert(1)</script>",
        '<b>bold</b> "quotes" & ampersands &amp; <img src=x onerror=alert(1)>',
        "Robert'); DROP TABLE mentions;--",
        "😡" * 5_000,
        "a" * 200_000,
        "rezalet " * 30_000,
        "\x00\x01\x02\u200b\ufeff",
        "İ\u0307" * 50,
        "طلبي لم يصل بعد",
        "'''' ’’’ n't n't",
        "http://" + "x" * 10_000,
    ],
)
def test_hostile_input_never_raises(enricher: Enricher, text: str) -> None:
    started = time.perf_counter()
    result = enricher.enrich(text, followers=None)
    assert time.perf_counter() - started < 2
    assert -1 <= result.sentiment <= 1
    assert result.priority in PRIORITIES
    assert result.lang is None or (len(result.lang) == 2 and result.lang.islower())


def test_empty_text_is_neutral(enricher: Enricher) -> None:
    assert enricher.enrich("") == Enrichment(lang=None, sentiment=0.0, priority="normal")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400), followers=st.one_of(st.none(), st.integers(0, 10**8)))
def test_any_text_gets_a_valid_enrichment(enricher: Enricher, text: str, followers) -> None:
    result = enricher.enrich(text, followers=followers)
    assert -1 <= result.sentiment <= 1
    assert result.priority in PRIORITIES


# ------------------------------------------- rules the labelled set asked for (sentiment.py)
@pytest.mark.parametrize(
    "text",
    ["Teşekkürler Acme, 2 haftadır bekliyorum, ne güzel hizmet 🙄",
     "Oh wonderful, the app logged me out again. Love that for me.",
     'The "fast shipping" took 12 days', "Thanks for nothing, Acme",
     "Hızlı teslimat dediniz, 9 gün sürdü"],
)  # fmt: skip
def test_sarcasm_is_a_complaint(enricher: Enricher, text: str) -> None:
    assert enricher.enrich(text).sentiment <= -0.3


@pytest.mark.parametrize(
    "text",
    ["Fatura itirazım 20 gündür sonuçlanmadı", "Order status has said processing for 10 days",
     "Why does it take 14 business days to process a refund?",
     "Nimbus Bank's app won't let me log in since yesterday"],
)  # fmt: skip
def test_waiting_is_a_complaint(enricher: Enricher, text: str) -> None:
    assert enricher.enrich(text).sentiment <= -0.3


def test_a_named_problem_not_understood_stays_a_complaint(enricher: Enricher) -> None:
    """A negated verb flips a bare "sorun" ("sorun yaşamadım") but not "sorunu"."""
    assert enricher.sentiment("sorunu anlamıyorlar", "tr") < -0.3
    assert enricher.sentiment("hiç kopma yaşamadım", "tr") > 0
    assert enricher.sentiment("canlı destekte kimse yok", "tr") < 0
    assert enricher.sentiment("iyi değil", "tr") <= -0.3


@pytest.mark.parametrize(
    "text",
    ["Yıllardır müşterinizim, hiç pişman olmadım", "Paketleme çok özenliydi, eline sağlık",
     "Couldn't be happier with my new phone", "Pricey but worth every penny",
     "Valla şikayet edecek bir şey bulamadım 😄"],
)  # fmt: skip
def test_idioms_of_praise(enricher: Enricher, text: str) -> None:
    assert enricher.enrich(text).sentiment >= 0.3


def test_numbers_in_a_question_are_not_a_complaint(enricher: Enricher) -> None:
    assert abs(enricher.enrich("Ürün kodu AC-4471, stokta var mı?").sentiment) < 0.3
    assert abs(enricher.enrich("How long does express shipping take to Izmir?").sentiment) < 0.3
