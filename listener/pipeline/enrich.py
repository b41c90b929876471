"""Enrichment stage: language, sentiment and priority for one mention.

Everything here is offline and deterministic: lingua for language (its models ship with
the wheel) and small hand-written lexicons for Turkish and English sentiment, because
the service runs without internet and a care team needs "is this an angry customer?"
more than fine-grained scores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

MAX_CHARS = 20_000
"""Longer texts are cut before analysis so a hostile 10 MB body cannot stall ingest."""
DETECT_CHARS = 1_000
NEGATIVE = -0.3
POSITIVE = 0.3
BIG_REACH = 10_000
ALPHA = 15.0

# Words are matched after Turkish-aware lowering and folding to ASCII (ç→c, ğ→g, ı→i,
# ö→o, ş→s, ü→u), so "sikayet" typed without Turkish letters still hits "şikayet".
# A trailing "*" marks a stem that matches any word starting with it: that is how
# Turkish suffixes (şikayetçiyim, rezaletsiniz, iadesi) are handled. The longest stem
# wins, so "sorunsuz" (+) beats "sorun" (-). Emoji lose their U+FE0F, so ❤️ is ❤.
# fmt: off
LEXICON: tuple[tuple[str, float], ...] = (
    # Turkish, negative
    ("rezalet*", -3), ("rezil*", -3), ("berbat*", -3), ("felaket*", -2.5), ("facia*", -2.5),
    ("skandal*", -2.5), ("mağdur*", -2.5), ("şikayet*", -2), ("iade*", -1), ("bozuk*", -2),
    ("bozul*", -2), ("kötü*", -2), ("yanlış*", -1.5), ("hata*", -1.5), ("sorun*", -1.5),
    ("sıkıntı*", -1.5), ("problem*", -1.5), ("arıza*", -2), ("gecik*", -1.5),
    ("bekliyor*", -1), ("beklet*", -1.5), ("hala", -0.5), ("yine", -0.5),
    ("kayıp*", -1.5), ("kaybol*", -2), ("kaybet*", -1.5), ("hasar*", -2), ("kırık*", -2),
    ("kırıl*", -1.5), ("eksik*", -1.5), ("yavaş*", -1), ("çöktü*", -2), ("çöküyor*", -2),
    ("donuyor*", -1.5), ("dondu*", -1.5), ("donmuş*", -1.5), ("dolandır*", -3),
    ("sahtekar*", -3), ("yalan*", -2), ("ilgisiz*", -2), ("saygısız*", -2.5), ("kaba", -2),
    ("kabaydı", -2), ("kabalık*", -2), ("umursamaz*", -2), ("bıkt*", -2), ("yeter", -1.5),
    ("utan*", -2), ("maalesef", -1), ("üzgün*", -1.5), ("üzücü", -1.5), ("üzül*", -1.5),
    ("sinir*", -2), ("kızgın*", -2), ("öfke*", -2), ("çileden", -2), ("kandır*", -2.5),
    ("zarar*", -2), ("cevapsız*", -2), ("yanıtsız*", -2), ("vasat*", -1), ("fena*", -2),
    ("fiyasko*", -2.5), ("iptal*", -1), ("asla", -1), ("ayıp*", -2), ("yazık*", -1.5),
    ("beter*", -2), ("boktan*", -3), ("saçma*", -2), ("çöp", -2), ("fahiş*", -2),
    ("pahalı*", -1), ("kesinti*", -1.5), ("kesil*", -1.5), ("başarısız*", -2),
    ("kalitesiz*", -2), ("mutsuz*", -2), ("memnuniyetsiz*", -2), ("habersiz*", -1.5),
    ("kimse*", -1), ("acil", -1), ("acilen", -1), ("imkansız*", -1.5), ("reddet*", -1.5),
    ("redded*", -1.5), ("mükerrer*", -1.5), ("avukat*", -1.5), ("dava*", -1.5),
    ("mahkeme*", -1.5), ("hakem*", -1.5),
    # Turkish, positive
    ("teşekkür*", 2), ("tşk*", 1.5), ("tsk", 1.5), ("sağol*", 1.5), ("eyvallah", 1.5),
    ("harika*", 3), ("süpersiniz", 2.5), ("mükemmel*", 3), ("memnun*", 2),
    ("güzel*", 2), ("iyi", 1), ("başarılı*", 2), ("hızlı*", 1.5), ("kolay*", 1),
    ("bayıl*", 2.5), ("bravo", 2), ("tebrik*", 2), ("helal", 2), ("yardımcı*", 1.5),
    ("yardımsever*", 2), ("çözül*", 1.5), ("çözdü*", 1.5), ("nazik*", 2), ("kibar*", 2),
    ("profesyonel*", 1.5), ("kaliteli*", 1.5), ("kusursuz*", 3), ("şahane*", 3),
    ("efsane*", 2.5), ("muhteşem*", 3), ("tavsiye*", 1.5), ("sevdim", 2.5),
    ("seviyorum", 2.5), ("beğen*", 2), ("sevin*", 2), ("mutlu*", 2), ("ilgilen*", 1),
    ("hallet*", 1), ("hallol*", 1), ("sorunsuz*", 2), ("sıkıntısız*", 1.5),
    ("problemsiz*", 1.5), ("hatasız*", 1.5), ("eksiksiz*", 1.5),
    # English, negative
    ("terrible", -3), ("awful", -3), ("horrible", -3), ("worst", -3), ("bad", -2),
    ("badly", -2), ("poor*", -1.5), ("useless", -2.5), ("broken", -2), ("fail*", -2),
    ("scam*", -3), ("fraud*", -3), ("ridiculous", -2.5), ("disappoint*", -2.5),
    ("angry", -2.5), ("furious", -3), ("annoy*", -2), ("frustrat*", -2.5),
    ("unacceptable", -3), ("complain*", -1.5), ("refund*", -1), ("late", -1.5),
    ("delay*", -1.5), ("missing", -1.5), ("lost", -1.5), ("damaged", -2), ("wrong", -1.5),
    ("error*", -1.5), ("bug", -1.5), ("bugs", -1.5), ("buggy", -2), ("crash*", -2),
    ("slow*", -1), ("rude*", -2.5), ("hate*", -3), ("suck*", -2.5), ("garbage", -3),
    ("trash", -2.5), ("joke", -1.5), ("overcharg*", -2.5), ("ripoff", -3),
    ("nightmare", -3), ("disgust*", -3), ("pathetic", -3), ("incompetent", -3),
    ("ignor*", -2), ("cancel*", -1), ("issue*", -1), ("outage*", -2), ("down", -1.5),
    ("unhappy", -2.5), ("upset", -2), ("sad", -1.5), ("waiting", -1), ("careless*", -2),
    ("duplicate", -1),
    ("lawyer*", -1.5), ("sue", -2), ("lawsuit", -2),
    # English, positive
    ("thank*", 2), ("thx", 1.5), ("great", 2.5), ("excellent", 3), ("amazing", 3),
    ("awesome", 3), ("love*", 3), ("good", 2), ("nice", 2), ("perfect*", 3), ("fast", 1.5),
    ("faster", 1.5), ("quick*", 1.5), ("helpful", 2), ("happy", 2.5), ("glad", 2),
    ("pleased", 2), ("satisfied", 2), ("fantastic", 3), ("wonderful", 3), ("best", 2.5),
    ("recommend*", 2), ("impress*", 2.5), ("smooth*", 1.5), ("easy", 1.5), ("kudos", 2),
    ("appreciate*", 2), ("resolved", 1.5), ("fixed", 1), ("friendly", 2), ("polite", 1.5),
    ("super", 2.5),  # also Turkish "süper"
    # Emoji
    ("😡", -2.5), ("🤬", -3), ("👎", -2), ("😠", -2), ("😤", -1.5), ("😢", -1.5), ("😭", -1.5),
    ("💩", -2), ("🙄", -1), ("😞", -1.5), ("😒", -1), ("🤦", -1), ("😍", 2.5), ("🙏", 1.5),
    ("👍", 1.5), ("❤", 2), ("♥", 2), ("😊", 1.5), ("🥰", 2.5), ("👏", 1.5), ("💯", 1),
    ("🎉", 1.5), ("😀", 1), ("😃", 1), ("😁", 1), ("🙂", 0.5), ("🤩", 2.5),
)
INTENSIFIERS = frozenset({
    "very", "so", "really", "extremely", "totally", "absolutely", "completely",
    "incredibly", "utterly", "seriously", "cok", "asiri", "gercekten", "hic", "resmen",
    "bayagi", "tam", "en", "son", "derece", "inanilmaz",
})
BUT_WORDS = frozenset({"but", "however", "ama", "fakat", "ancak", "lakin"})
EN_NEGATORS = frozenset({
    "not", "no", "never", "nor", "cannot", "without", "nobody", "nothing", "none", "dont",
    "didnt", "doesnt", "isnt", "wasnt", "cant", "wont", "havent", "hasnt", "arent",
    "werent", "couldnt", "wouldnt",
})
# After an English negator these are not sentiment words, yet "never arrived",
# "doesn't work" and "no response" are exactly what an angry customer writes.
EN_EXPECTED = (
    "work", "arriv", "receiv", "respon", "repl", "answer", "deliver", "help", "came",
    "come", "ship", "load", "open", "fix", "refund", "resolv", "show", "get", "got", "mov",
    "call", "hand", "hear",
)
# Greetings and sign-offs ("İyi çalışmalar", "Good morning") are politeness, not praise.
GREETED = frozenset({
    ("iyi", "gunler"), ("iyi", "calismalar"), ("iyi", "aksamlar"), ("iyi", "haftalar"),
    ("good", "morning"), ("good", "afternoon"), ("good", "evening"), ("good", "day"),
})
# fmt: on
TR_COPULA_NEG = re.compile(r"degil\w*$|yok(?:tu|mus|tur)?$")
TR_HELPER_VERBS = ("ol", "et", "ed", "edil", "yap")
TR_TROUBLE = ("sorun", "problem", "sikinti", "ariza", "hata")
"""Negated helper verbs flip praise before them ("memnun olmadım", "tavsiye etmem") but
not complaints ("iade edilmedi" is still a complaint); any negated verb flips trouble
words ("sorun yaşamadım"); other negated verbs ("gelmedi", "çalışmıyor") are a
complaint on their own."""

TR_FOLD = str.maketrans("çğıöşüâîû", "cgiosuaiu")
TR_VERB_NEG = re.compile(r"(m[iu]yor|m[ae]d[iu]|m[ae]z|m[ae]y[ae]c[ae]k|m[ae]m[iu]s)\w{0,8}$")
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?|[\u2600-\u27bf\U0001f300-\U0001faff]")
URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
NOISE = re.compile(r"https?://\S+|www\.\S+|[@#][\w.]+|<[^>]{0,200}>", re.IGNORECASE)
REPEATS = re.compile(r"(\w)\1{2,}")
SIGN_OFF = re.compile(
    r"^\s*(?:thanks|thank you|many thanks|regards|best regards|kind regards|best|cheers"
    r"|saygılarımla|saygılar|teşekkürler|teşekkür ederim)\s*,\s*$",
    re.IGNORECASE | re.MULTILINE,
)
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


@dataclass(frozen=True)
class Enrichment:
    lang: str | None
    sentiment: float
    priority: str


def lower(text: str, lang: str | None) -> str:
    """Case-fold without breaking Turkish: "I" is "ı" in Turkish, and "İ" is always "i"
    (plain casefold turns it into "i" plus a combining dot)."""
    if lang == "tr":
        text = text.replace("I", "ı")
    return text.replace("İ", "i").casefold()


def fold(text: str) -> str:
    return text.translate(TR_FOLD)


def _to_language(code: str) -> Language:
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except ValueError:
        raise ValueError(f"unknown ISO 639-1 language code: {code!r}") from None


class Enricher:
    """Built once by the app factory (building the lingua detector is the slow part)."""

    def __init__(
        self, languages: Sequence[str] = ("tr", "en", "de", "fr", "es", "ar", "ru")
    ) -> None:
        self._detector = (
            LanguageDetectorBuilder.from_languages(*(_to_language(c) for c in languages))
            .with_minimum_relative_distance(0.05)
            .with_preloaded_language_models()
            .build()
        )
        self._exact = {fold(w): v for w, v in LEXICON if not w.endswith("*")}
        self._stems = {fold(w[:-1]): v for w, v in LEXICON if w.endswith("*")}

    def detect_language(self, text: str) -> str | None:
        """None when there is too little text to tell; Turkish-only letters (ğ, ı, ş)
        still answer "tr" for a short post lingua will not commit on."""
        cleaned = NOISE.sub(" ", text[:DETECT_CHARS])
        if sum(ch.isalpha() for ch in cleaned) < 3:
            return None
        found = self._detector.detect_language_of(cleaned)
        if found is not None:
            return found.iso_code_639_1.name.lower()
        if any(ch in "ğĞıİşŞ" for ch in cleaned):
            return "tr"
        return None

    def sentiment(self, text: str, lang: str | None) -> float:
        """Lexicon score with negation, intensifiers, "but", caps and "!" (VADER-style),
        squashed into -1..1 by x / sqrt(x² + 15)."""
        raw = SIGN_OFF.sub(" ", NOISE.sub(" ", text[:MAX_CHARS]).replace("#", " "))
        words = self._words(raw, lang)
        valences = [0.0] * len(words)
        boost = negate = 0
        but_at = None
        for i, (word, caps) in enumerate(words):
            bare = word.replace("'", "")
            valence, covered = self._lookup(word)
            if word in BUT_WORDS:
                but_at = i
            elif word in INTENSIFIERS:
                boost = 2
            elif lang != "tr" and (bare in EN_NEGATORS or word.endswith("n't")):
                negate = 3
            elif TR_COPULA_NEG.match(word) or (not valence and lang == "tr" and _tr_negated(word)):
                valences[i] = _tr_negation(words, valences, i)
            elif valence:
                if lang == "tr" and TR_VERB_NEG.match(word[covered:]):
                    valence *= -0.74
                valence += math.copysign(0.733, valence) if caps else 0.0
                valence *= (1.5 if boost else 1.0) * (-0.74 if negate else 1.0)
                valences[i], boost, negate = valence, 0, 0
            elif negate and bare.startswith(EN_EXPECTED):
                valences[i], boost, negate = -1.5, 0, 0
            else:
                boost, negate = max(boost - 1, 0), max(negate - 1, 0)
        if but_at is not None:
            valences = [v * (0.5 if j < but_at else 1.5) for j, v in enumerate(valences)]
        total = sum(valences)
        if total:
            total += math.copysign(0.292 * min(raw.count("!"), 4), total)
        return round(max(-1.0, min(1.0, total / math.sqrt(total * total + ALPHA))), 3)

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
        flat = fold(lower(text[:MAX_CHARS], None))
        reach = (followers or 0) >= BIG_REACH
        negative = sentiment <= NEGATIVE
        links = len(URL.findall(flat))
        markers = len(set(SPAM.findall(flat)))
        if not negative and (markers >= 2 or (markers and links) or links >= 3):
            return "low"
        if negative and (reach or RISK.search(flat)):
            return "urgent"
        if negative or reach:
            return "high"
        if sentiment >= POSITIVE and "?" not in text:
            return "low"
        return "normal"

    def enrich(
        self, text: str, followers: int | None = None, hint_lang: str | None = None
    ) -> Enrichment:
        """A source's own language tag (X's "lang") beats guessing from a few words,
        but only when it is a real two-letter code ("und", "qme" and "zxx" are not)."""
        text = text or ""
        if hint_lang and len(hint_lang) == 2 and hint_lang.isascii() and hint_lang.isalpha():
            lang: str | None = hint_lang.lower()
        else:
            lang = self.detect_language(text)
        sentiment = self.sentiment(text, lang)
        return Enrichment(lang, sentiment, self.priority(text, sentiment, followers))

    def _words(self, raw: str, lang: str | None) -> list[tuple[str, bool]]:
        """Folded words (letter runs squeezed: "berbaaat" → "berbat") with an ALL-CAPS
        flag, greetings dropped."""
        words = [
            (REPEATS.sub(r"\1", fold(lower(tok, lang))).replace("’", "'"), _is_caps(tok))
            for tok in WORD.findall(raw)
        ]
        following = [*words[1:], ("", False)]
        return [w for w, n in zip(words, following, strict=False) if (w[0], n[0]) not in GREETED]

    def _lookup(self, word: str) -> tuple[float, int]:
        """Valence and how many letters of the word the lexicon entry covered."""
        if word in self._exact:
            return self._exact[word], len(word)
        for end in range(len(word), 2, -1):
            valence = self._stems.get(word[:end])
            if valence is not None:
                return valence, end
        return 0.0, 0


def _is_caps(token: str) -> bool:
    return len(token) >= 3 and token.isupper()


def _tr_negated(word: str) -> bool:
    return len(word) > 4 and TR_VERB_NEG.search(word, 2) is not None


def _tr_negation(words: list[tuple[str, bool]], valences: list[float], i: int) -> float:
    """ "değil", "yok" and negated helper verbs flip the sentiment word just before them
    ("memnun değilim", "sorun yok"); otherwise the negation itself is the complaint.
    Turkish negation of praise is a plain complaint, so positives flip at full weight."""
    word = words[i][0]
    copula = TR_COPULA_NEG.match(word) is not None
    match = None if copula else TR_VERB_NEG.search(word, 2)
    helper = match is not None and word[: match.start()] in TR_HELPER_VERBS
    for j in (i - 1, i - 2):
        if j < 0 or not valences[j]:
            continue
        if copula or (helper and valences[j] > 0) or words[j][0].startswith(TR_TROUBLE):
            valences[j] *= -1.0 if valences[j] > 0 else -0.74
            return 0.0
    if word.startswith("degil"):
        return -0.5
    return -1.0 if copula else -1.5
