"""How a mention's text is folded for the queue's search, with no database imports: the
ingest worker process folds each line, and should not load SQLAlchemy to do it.

Text search is case- and Turkish-insensitive ("IADE" and "iade" find "İade"; "sikayet"
finds "şikayet"): each mention stores its text, author handle and name folded this way
(`search_text`), and a search folds its words the same way.
"""

from __future__ import annotations

# Letters a search treats as one: case, Turkish dotless/dotted i, and the cedilla/breve
# forms people drop when typing fast on an English keyboard.
LETTER_GROUPS = ("aAâÂ", "cCçÇ", "gGğĞ", "iIıİîÎ", "oOöÖ", "sSşŞ", "uUüÜûÛ")
# The groups' non-ASCII letters and the ASCII one each folds to; `str.lower` does the rest.
FOLDED = [(char, group[0]) for group in LETTER_GROUPS for char in group[1:]
          if not char.isascii()]
SEARCH_FIELD_SEPARATOR = "\n"  # a search is never multi-line, so never spans two fields


def fold(text: str) -> str:
    """Text as a search compares it: "İADE", "ıade" and "iade" all become "iade". (A few
    `str.replace` calls: ten times quicker than `str.translate` at ingest's pace.)"""
    if not text.isascii():
        for letter, base in FOLDED:
            if letter in text:
                text = text.replace(letter, base)
    return text.lower()


def search_text(text: str | None, handle: str | None, name: str | None) -> str:
    """What a mention's `search_text` holds: its text, its author's handle and name."""
    return SEARCH_FIELD_SEPARATOR.join(fold(part or "") for part in (text, handle, name))
