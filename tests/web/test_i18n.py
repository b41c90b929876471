"""Turkish users see Turkish: every UI string in the templates has a translation."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from listener.web import TEMPLATES_DIR
from listener.web.i18n import Formats, catalogue, pick_lang, translator

LITERAL = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def template_strings() -> dict[str, str]:
    found = {}
    for path in sorted(TEMPLATES_DIR.glob("*.html")):
        for double, single in LITERAL.findall(path.read_text(encoding="utf-8")):
            found[double or single] = path.name
    return found


def test_every_template_string_has_a_turkish_translation() -> None:
    strings = template_strings()
    assert len(strings) > 20
    turkish = catalogue("tr")
    missing = sorted(f"{where}: {text}" for text, where in strings.items()
                     if text not in turkish)
    assert not missing, "add these to listener/web/locale/<area>.tr.json:\n" + "\n".join(missing)


def test_translations_keep_their_placeholders() -> None:
    for english, turkish in catalogue("tr").items():
        assert set(re.findall(r"{\w+}", english)) == set(re.findall(r"{\w+}", turkish)), english


def test_language_comes_from_the_user_then_the_browser() -> None:
    assert pick_lang("tr", "en-US,en") == "tr"
    assert pick_lang(None, "de-DE,tr;q=0.8,en;q=0.5") == "tr"
    assert pick_lang(None, "de-DE") == "en"
    assert translator("tr")("Sign in") == "Giriş yap"
    assert translator("en")("{n} open", n=3) == "3 open"


def test_dates_and_numbers_read_as_each_language_writes_them() -> None:
    moment = datetime(2026, 11, 24, 11, 5, tzinfo=UTC)
    istanbul = ZoneInfo("Europe/Istanbul")
    assert Formats("tr", istanbul).time(moment) == "24 Kas 14:05"
    assert Formats("en", istanbul).time(moment) == "24 Nov 14:05"
    assert Formats("tr", istanbul).number(1234.5, 1) == "1.234,5"
    assert Formats("en", istanbul).number(1234.5, 1) == "1,234.5"
    assert Formats("tr", istanbul).percent(0.875) == "%87,5"
