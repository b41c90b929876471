"""The UI in Turkish and English: strings, dates and numbers in the user's language.

UI text is written in English in the templates as `{{ _("Queue") }}`; Turkish comes from
the JSON catalogues in `listener/web/locale/*.tr.json` (one per page area, merged).
Dates and numbers go through Babel so "1.234,5" and "24 Kas 14:05" read as a Turk
expects. A missing translation falls back to the English text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent

LANGS = ("en", "tr")
LOCALE_DIR = Path(__file__).parent / "locale"


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    if lang == "en":
        return merged
    for path in sorted(LOCALE_DIR.glob(f"*.{lang}.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def translator(lang: str) -> Callable[..., str]:
    """`_("{n} open", n=3)`: look up, then fill named fields."""
    table = catalogue(lang)

    def _(text: str, **fields: object) -> str:
        found = table.get(text, text)
        return found.format(**fields) if fields else found

    return _


def pick_lang(preferred: str | None, accept_language: str | None) -> str:
    """The user's own choice, else the first of the browser's languages we speak."""
    if preferred in LANGS:
        return preferred  # type: ignore[return-value]
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGS:
            return code
    return "en"


class Formats:
    """Babel formatting bound to one language and the configured time zone."""

    def __init__(self, lang: str, tz: ZoneInfo):
        self.lang = lang
        self.tz = tz

    def time(self, moment: datetime | None, pattern: str = "d MMM HH:mm") -> str:
        if moment is None:
            return ""
        return format_datetime(moment.astimezone(self.tz), pattern, locale=self.lang)

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=fmt, locale=self.lang)

    def percent(self, ratio: float | None) -> str:
        """One decimal, with the sign where the language puts it (Turkish "%87,5")."""
        if ratio is None:
            return "–"
        pattern = Locale.parse(self.lang).percent_formats[None].pattern
        return format_percent(ratio, format=pattern.replace("#,##0", "#,##0.0", 1),
                              locale=self.lang)
