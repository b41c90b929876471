"""Tone templates: one reply text per channel, intent and language, run in a sandbox.

A template is looked up at three levels, each first in the asked language, then in
English (so a Turkish draft is never replaced by an English one when a Turkish
template exists at a less specific level):

1. the channel's folder, `templates/tones/<channel>/<intent>.<lang>.j2` (twitter, email);
2. the source kind's folder, when the channel is named otherwise (a discourse source on
   channel `forum` uses `discourse/`);
3. the tone group: `social` (warm and brief) or `formal` (salutation, sign-off).

At each level an override an admin saved in the database (`ToneTemplate`) wins over the
file. Templates are written by operators and admins; the values they print come from
customers, so the environment is sandboxed (no `__class__` tricks), values are printed
as data and never parsed as template syntax, and markup and control characters are
dropped from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

TONES_DIR = Path(__file__).resolve().parent.parent / "templates" / "tones"
INTENTS = ("apology", "thanks", "need-more-info", "resolved", "escalate")
ALIASES = {"info": "need-more-info"}  # names older API clients send
LANGS = ("tr", "en")
GROUPS = ("social", "formal")
SOCIAL_CHANNELS = frozenset({"twitter", "x", "mastodon", "reddit", "discourse", "instagram",
                             "facebook", "youtube"})
INTENT_NAME = re.compile(r"[a-z0-9_-]{1,50}")
FOLDER_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,29}")
MARKUP = re.compile(r"[<>\x00-\x1f\x7f]")
MAX_BODY = 10_000

# (folder, intent, lang) -> template body saved by an admin
Overrides = Mapping[tuple[str, str, str], str]


class UnknownTemplate(LookupError):
    pass


class BadTemplate(ValueError):
    """The template does not compile, or fails on the sample mention; says where."""


def tone_of(*channels: str | None) -> str:
    return "social" if any(c in SOCIAL_CHANNELS for c in channels) else "formal"


def intent_name(name: str) -> str:
    """The intent a client asked for, with old names mapped to the current ones."""
    if not isinstance(name, str) or not INTENT_NAME.fullmatch(name):
        raise UnknownTemplate(f"template names are lowercase words, got {str(name)[:50]!r}")
    return ALIASES.get(name, name)


def _plain(value: Any) -> Any:
    """Values come from customers (names, handles, text): no markup, no control characters."""
    return MARKUP.sub("", value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Found:
    template: jinja2.Template
    folder: str
    intent: str
    lang: str
    source: str  # "file" | "override"

    @property
    def path(self) -> str:
        where = f"{self.folder}/{self.intent}.{self.lang}"
        return f"templates/tones/{where}.j2" if self.source == "file" else f"override:{where}"


class ToneTemplates:
    def __init__(self, directory: Path = TONES_DIR):
        self.directory = directory
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(directory), autoescape=False, finalize=_plain,
            undefined=jinja2.Undefined, trim_blocks=True, lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        # The admin check: a misspelt variable is an error there, an empty string in drafts.
        self.strict_env = self.env.overlay(undefined=jinja2.StrictUndefined)
        self._compiled: dict[str, jinja2.Template] = {}

    def levels(self, channel: str, kind: str | None = None) -> list[str]:
        named = [c for c in (channel, kind) if c and FOLDER_NAME.fullmatch(c)]
        return list(dict.fromkeys([*named, tone_of(channel, kind)]))

    def find(self, channel: str, intent: str, lang: str | None, kind: str | None = None,
             overrides: Overrides | None = None) -> Found:
        intent = intent_name(intent)
        overrides = overrides or {}
        langs = list(dict.fromkeys([lang if lang in LANGS else "en", "en"]))
        levels = self.levels(channel, kind)
        for code in langs:
            for folder in levels:
                body = overrides.get((folder, intent, code))
                if body is not None:
                    return Found(self.compile(body), folder, intent, code, "override")
                try:
                    template = self.env.get_template(f"{folder}/{intent}.{code}.j2")
                except jinja2.TemplateNotFound:
                    continue
                return Found(template, folder, intent, code, "file")
        raise UnknownTemplate(
            f"no tone template {intent!r} for channel {channel} (looked in "
            + ", ".join(f"templates/tones/{folder}/" for folder in levels) + ")"
        )

    def file_body(self, folder: str, intent: str, lang: str) -> str | None:
        if not (FOLDER_NAME.fullmatch(folder) and INTENT_NAME.fullmatch(intent)
                and lang in LANGS):
            return None
        path = self.directory / folder / f"{intent}.{lang}.j2"
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def compile(self, body: str, strict: bool = False) -> jinja2.Template:
        """A saved override, compiled once; BadTemplate says the line and the problem."""
        if len(body) > MAX_BODY:
            raise BadTemplate(f"a template may be at most {MAX_BODY} characters")
        env = self.strict_env if strict else self.env
        cached = None if strict else self._compiled.get(body)
        if cached is not None:
            return cached
        try:
            template = env.from_string(body)
        except jinja2.TemplateSyntaxError as exc:
            raise BadTemplate(f"line {exc.lineno}: {exc.message}") from None
        if not strict:
            if len(self._compiled) > 500:
                self._compiled.clear()
            self._compiled[body] = template
        return template

    def intents(self) -> tuple[str, ...]:
        """The five every channel has, then any an operator added as files."""
        found = {path.name.split(".")[0] for path in self.directory.glob("*/*.j2")}
        extra = sorted(found - set(INTENTS) - set(ALIASES))
        return (*INTENTS, *(name for name in extra if INTENT_NAME.fullmatch(name)))

    def folders(self) -> tuple[str, ...]:
        """The tone groups, then every channel or kind that has a folder of its own."""
        own = sorted(p.name for p in self.directory.iterdir()
                     if p.is_dir() and p.name not in GROUPS and FOLDER_NAME.fullmatch(p.name))
        return (*GROUPS, *own)
