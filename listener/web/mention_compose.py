"""The reply composer's seam to `responders.composer`: the draft for an intent in the
mention's tone and language, and how the page's live counter must count.

The server's `Composer.measure` is the truth (sending checks it); the page's JavaScript
repeats its rule (`count_rule`) so the counter moves as the agent types.
"""

from __future__ import annotations

from typing import Any

from listener.services import Services
from listener.web.access import User
from listener.web.mention_view import MentionView
from responders.composer import Draft
from responders.drafts import LANGS
from responders.limits import LINK_LENGTH, X_CHANNELS


def draft_lang(view: MentionView, asked: str | None) -> str:
    """The language asked for, else the mention's, else English."""
    for lang in (asked, view.mention.lang):
        if lang in LANGS:
            return lang  # type: ignore[return-value]
    return "en"


def signer(services: Services, user: User | None) -> str | None:
    """Who signs the draft: the user's agent name, else their login name."""
    if user is None:
        return None
    return services.composer.agent_names.get(user.agent_id or "") or user.name


async def compose(services: Services, mention_id: int, intent: str, lang: str,
                  user: User | None) -> Draft | None:
    """None for an unknown mention; raises UnknownTemplate for an unknown intent."""
    async with services.store.read() as session:
        return await services.composer.compose(session, mention_id, intent, lang,
                                               agent=signer(services, user))


def composer_box(services: Services, view: MentionView, text: str, intent: str | None,
                 lang: str) -> dict[str, Any]:
    """What the composer form shows, with the counting rule for its script."""
    mention = view.mention
    counted = services.composer.measure(mention.channel, text, mention.source)
    rule_channel = services.composer.limit_channel(mention.channel, mention.source)
    rule = ("x" if rule_channel in X_CHANNELS else
            "mastodon" if rule_channel == "mastodon" else "plain")
    return {"text": text, "intent": intent or "", "lang": lang, "langs": LANGS,
            "intents": services.composer.intents(), "length": counted.length,
            "limit": counted.limit, "over": counted.over, "rule": rule,
            "link_length": LINK_LENGTH}
