"""Templates an admin saved in the database win over the files, for every replica, until
reverted; drafts of stored mentions know their customer and the assigned agent."""

from __future__ import annotations

from typing import Any

from listener.models import Author, Customer, Mention
from listener.store import Store
from listener.store import tone_templates as overrides
from responders.composer import Composer
from tests.conftest import MONDAY_10


async def stored_mention(store: Store, channel: str, lang: str = "tr",
                         segment: str | None = "vip") -> int:
    async with store.write() as session:
        customer = Customer(display_name="Deniz Kaya", segment=segment, created_at=MONDAY_10)
        session.add(customer)
        await session.flush()
        author = Author(channel=channel, handle="deniz", name="Deniz Kaya",
                        customer_id=customer.id)
        session.add(author)
        await session.flush()
        mention = Mention(source="src", channel=channel, external_id=f"{channel}-1",
                          author_id=author.id, customer_id=customer.id, text="Kargo nerede?",
                          lang=lang, created_at=MONDAY_10, ingested_at=MONDAY_10,
                          assignee="ayse")
        session.add(mention)
        await session.flush()
        return mention.id


async def draft(store: Store, composer: Composer, mention_id: int, intent: str,
                lang: str | None = None) -> Any:
    async with store.read() as session:
        return await composer.compose(session, mention_id, intent, lang)


async def save(store: Store, key: tuple[str, str, str], body: str) -> None:
    async with store.write() as session:
        await overrides.save_override(session, key, body, "admin", MONDAY_10)


async def test_an_override_wins_over_the_file_until_reverted(store: Store) -> None:
    composer = Composer(brand_name="Acme", agent_names={"ayse": "Ayşe"})
    mention_id = await stored_mention(store, "twitter")
    before = await draft(store, composer, mention_id, "apology")
    assert before.template_path == "templates/tones/twitter/apology.tr.j2"

    await save(store, ("twitter", "apology", "tr"),
               "@{{ mention.author.handle }} Özür dileriz {{ customer.name }} "
               "({{ customer.segment }}) – {{ agent.name }}, {{ brand.name }}")
    edited = await draft(store, composer, mention_id, "apology")
    assert edited.text == "@deniz Özür dileriz Deniz Kaya (vip) – Ayşe, Acme"
    assert edited.template_path == "override:twitter/apology.tr"
    assert edited.limit == 280 and edited.length == len(edited.text)

    await save(store, ("twitter", "apology", "tr"), "Güncellendi {{ mention.text }}")
    assert (await draft(store, composer, mention_id, "apology")).text == (
        "Güncellendi Kargo nerede?")
    english = await draft(store, composer, mention_id, "apology", "en")
    assert english.template_path == "templates/tones/twitter/apology.en.j2"

    async with store.write() as session:
        assert await overrides.delete_override(session, ("twitter", "apology", "tr"))
        assert not await overrides.delete_override(session, ("twitter", "apology", "tr"))
    assert (await draft(store, composer, mention_id, "apology")).text == before.text


async def test_a_tone_group_override_reaches_every_channel_of_the_group(store: Store) -> None:
    composer = Composer()
    masto = await stored_mention(store, "mastodon", lang="en")
    await save(store, ("social", "thanks", "en"), "Cheers {{ mention.author.first_name }}!")
    await save(store, ("formal", "thanks", "en"), "Dear {{ mention.author.name }}")
    assert (await draft(store, composer, masto, "thanks")).text == "Cheers Deniz!"
    await save(store, ("mastodon", "thanks", "en"), "Mastodon only")
    assert (await draft(store, composer, masto, "thanks")).text == "Mastodon only"


async def test_a_missing_mention_has_no_draft(store: Store) -> None:
    assert await draft(store, Composer(), 424242, "apology") is None
