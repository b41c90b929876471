"""The reply composer: a draft in the channel's tone and the customer's language, measured
against the channel's length limit.

What the web UI and the API use::

    composer.intents()                      # ("apology", "thanks", "need-more-info", ...)
    draft = await composer.compose(session, mention_id, "apology", lang="tr", agent="Ayşe")
    draft.text, draft.length, draft.limit, draft.over
    composer.measure(mention.channel, text, mention.source)   # the live counter's rule

`render` is the same without the database (the caller brings the rows and overrides);
`check` is what the template admin runs before saving.

Templates see four variables: `mention` (text, channel, url, lang, and `author` with
handle, name, first_name), `customer` (name, segment; None when unknown), `agent` (name)
and `brand` (name, from `replies.brand_name`). `name` and `handle` are kept for older
templates. Every value but the brand comes from a customer: printed as text, never run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import Author, Customer, Mention
from listener.store import queries as q
from listener.store import tone_templates
from responders.drafts import LANGS, BadTemplate, Overrides, ToneTemplates, intent_name
from responders.limits import LENGTH_LIMITS, Measure, measure

DEFAULT_BRAND = "Customer Care"
SAMPLE_TEXT = {
    "tr": "Siparişim iki haftadır gelmedi, kimse de dönüş yapmıyor. {{ 7*7 }}",
    "en": "My order still hasn't arrived after two weeks and nobody answers. {{ 7*7 }}",
}


@dataclass(frozen=True)
class Draft:
    text: str
    intent: str
    lang: str
    template_path: str  # templates/tones/<folder>/<intent>.<lang>.j2, or override:<...>
    length: int  # as the channel counts it (X: links are 23)
    limit: int | None  # None: no limit on this channel

    @property
    def over(self) -> bool:
        return self.limit is not None and self.length > self.limit

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "intent": self.intent, "lang": self.lang,
                "template_path": self.template_path, "length": self.length,
                "limit": self.limit, "over": self.over}


# What templates see: plain frozen records of strings, nothing with behaviour to reach.
@dataclass(frozen=True)
class ToneAuthor:
    handle: str
    name: str
    first_name: str


@dataclass(frozen=True)
class ToneMention:
    text: str
    channel: str
    url: str
    lang: str
    author: ToneAuthor


@dataclass(frozen=True)
class ToneCustomer:
    name: str
    segment: str


@dataclass(frozen=True)
class Named:
    name: str


class Composer:
    def __init__(self, brand_name: str = DEFAULT_BRAND,
                 length_limits: Mapping[str, int | None] | None = None,
                 source_kinds: Mapping[str, str] | None = None,
                 agent_names: Mapping[str, str] | None = None,
                 templates: ToneTemplates | None = None):
        self.brand = Named(brand_name)
        self.limits: dict[str, int | None] = {**LENGTH_LIMITS, **(length_limits or {})}
        self.source_kinds = dict(source_kinds or {})
        self.agent_names = dict(agent_names or {})
        self.templates = templates or ToneTemplates()

    @classmethod
    def from_config(cls, config: Any) -> Composer:
        return cls(config.replies.brand_name, config.replies.length_limits,
                   {s.id: s.kind for s in config.sources},
                   {a.id: a.name or a.id for a in config.agents})

    def intents(self) -> tuple[str, ...]:
        return self.templates.intents()

    def languages(self) -> tuple[str, ...]:
        return LANGS

    def limit_channel(self, channel: str, source: str | None = None) -> str:
        """Whose limit applies: the channel's, else its source kind's (a discourse
        source on channel `forum` has Discourse's)."""
        kind = self.source_kinds.get(source or "")
        if channel not in self.limits and kind in self.limits:
            return kind  # type: ignore[return-value]
        return channel

    def measure(self, channel: str, text: str, source: str | None = None) -> Measure:
        return measure(self.limit_channel(channel, source), text, self.limits)

    async def compose(self, session: AsyncSession, mention_id: int, intent: str,
                      lang: str | None = None, agent: str | None = None) -> Draft | None:
        """The draft for a stored mention (None: no such mention). `lang` defaults to the
        mention's, `agent` (who signs) to the name of the agent it is assigned to.
        Raises UnknownTemplate for an intent no template exists for."""
        row = await q.get_mention(session, mention_id)
        if row is None:
            return None
        mention, author = row
        customer = (await session.get(Customer, mention.customer_id)
                    if mention.customer_id else None)
        levels = self.templates.levels(mention.channel, self.source_kinds.get(mention.source))
        overrides = await tone_templates.overrides_for(session, levels)
        if agent is None:
            agent = self.agent_names.get(mention.assignee or "")
        return self.render(mention, customer, agent, intent, lang, author=author,
                           overrides=overrides)

    def render(self, mention: Mention, customer: Customer | None, agent: str | None,
               intent: str, lang: str | None = None, *, author: Author | None = None,
               overrides: Overrides | None = None) -> Draft:
        lang = lang or mention.lang
        found = self.templates.find(mention.channel, intent, lang,
                                    self.source_kinds.get(mention.source), overrides)
        text = found.template.render(self.context(mention, author, customer, agent)).strip()
        counted = self.measure(mention.channel, text, mention.source)
        return Draft(text, found.intent, found.lang, found.path, counted.length,
                     counted.limit)

    def context(self, mention: Mention, author: Author | None, customer: Customer | None,
                agent: str | None) -> dict[str, Any]:
        handle = author.handle if author else ""
        name = ((author.name if author else "") or handle).strip()
        view = ToneMention(
            text=mention.text or "", channel=mention.channel, url=mention.url or "",
            lang=mention.lang or "",
            author=ToneAuthor(handle=handle, name=name, first_name=name.split(" ")[0]),
        )
        known = (ToneCustomer(customer.display_name or "", customer.segment or "")
                 if customer is not None else None)
        return {"mention": view, "customer": known, "agent": Named(agent or ""),
                "brand": self.brand, "name": view.author.first_name, "handle": handle}

    def check(self, body: str, channel: str, intent: str, lang: str,
              agent: str | None = None) -> Draft:
        """Before an admin's template is saved: it compiles, uses only variables that
        exist, stays in the sandbox, and still renders when the customer is unknown.
        Returns the preview on a sample mention; raises BadTemplate saying why not."""
        intent = intent_name(intent)
        strict = self.templates.compile(body, strict=True)
        lenient = self.templates.compile(body)
        mention, author, customer = sample(channel, lang)
        full = self.context(mention, author, customer, agent or "Ayşe")
        try:
            text = strict.render(full).strip()
        except Exception as exc:  # any error a template can raise, shown to the admin
            raise BadTemplate(_explain(exc)) from None
        try:
            lenient.render(self.context(mention, author, None, None))
        except Exception as exc:
            raise BadTemplate("fails when the customer is not known: "
                              + _explain(exc)) from None
        counted = self.measure(channel, text)
        return Draft(text, intent, lang, f"preview:{channel}/{intent}.{lang}",
                     counted.length, counted.limit)


def sample(channel: str, lang: str) -> tuple[Mention, Author, Customer]:
    """The mention previews are rendered on; its text carries template syntax, which
    must come out as typed."""
    author = Author(channel=channel, handle="deniz_y", name="Deniz Yılmaz")
    mention = Mention(channel=channel, source="sample", text=SAMPLE_TEXT.get(lang, ""),
                      url="https://example.com/post/1", lang=lang)
    return mention, author, Customer(display_name="Deniz Yılmaz", segment="vip")


def _explain(exc: Exception) -> str:
    if isinstance(exc, jinja2.TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
