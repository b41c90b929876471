"""Reply drafts from tone templates: warm and short on social, formal on e-mail and forms.

Lookup order for template NAME in language LANG on CHANNEL:
templates/tones/<channel>/<NAME>.<LANG>.j2, then the channel's tone group
(social|formal), each first in LANG and then in English.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

TONES_DIR = Path(__file__).resolve().parent.parent / "templates" / "tones"
SOCIAL_CHANNELS = frozenset({"twitter", "mastodon", "reddit"})
MARKUP = re.compile(r"[<>\x00-\x1f]")


class UnknownTemplate(LookupError):
    pass


def tone_of(channel: str) -> str:
    return "social" if channel in SOCIAL_CHANNELS else "formal"


def _plain(value: Any) -> Any:
    """Values come from customers (names, handles): no markup, no control characters."""
    return MARKUP.sub("", value) if isinstance(value, str) else value


class Drafter:
    def __init__(self, directory: Path = TONES_DIR):
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(directory), autoescape=False, finalize=_plain,
            undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
        )

    def candidates(self, channel: str, template: str, lang: str | None) -> list[str]:
        langs = [lang, "en"] if lang and lang != "en" else ["en"]
        return [f"{folder}/{template}.{code}.j2"
                for folder in (channel, tone_of(channel)) for code in langs]

    def draft(self, channel: str, template: str, lang: str | None, **context: Any) -> str:
        if not re.fullmatch(r"[a-z0-9_-]{1,50}", template):
            raise UnknownTemplate(f"template names are lowercase words, got {template[:50]!r}")
        try:
            chosen = self.env.select_template(self.candidates(channel, template, lang))
        except jinja2.TemplatesNotFound:
            raise UnknownTemplate(
                f"no tone template {template!r} for channel {channel} "
                f"(looked in templates/tones/{channel}/ and templates/tones/{tone_of(channel)}/)"
            ) from None
        return chosen.render(**context).strip()
