"""Noise: reposts, blocklisted words and repeated posts are kept but never queued."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from connectors.base import Batch, RawAuthor, RawItem
from listener.app import build_services, prepare_database
from listener.config import ConfigError, NoiseConfig
from listener.models import Mention, MentionEvent
from listener.pipeline.noise import NoiseFilter, RepeatLog, casefold, repeat_key
from tests.conftest import make_config

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def raw(n: int, text: str = "Kargom nerede? Hâlâ gelmedi!", at: datetime = T0,
        handle: str = "ali", **extra: Any) -> RawItem:
    return RawItem(external_id=str(n), text=text, created_at=at, channel="twitter",
                   author=RawAuthor(handle, handle.title()),
                   url=f"https://x.com/{handle}/status/{n}", **extra)


# ------------------------------------------------------------------------ pure decision
@pytest.mark.parametrize("item", [
    raw(1, "RT @acme: Kargo bedava bu hafta!"),
    raw(2, "  rt @someone siparişim gelmedi"),
    raw(3, "Boosted from someone else", repost=True),
])
def test_retweets_and_boosts_are_noise(item: RawItem) -> None:
    assert NoiseFilter().reason(item, 1, RepeatLog()) == "noise: repost"


def test_a_text_mentioning_rt_is_not_a_retweet() -> None:
    assert NoiseFilter().reason(raw(1, "Why is there an RT @acme in my feed?"), 1,
                                RepeatLog()) is None


@pytest.mark.parametrize(("text", "entry"), [
    ("BEDAVA TAKİPÇİ için tıkla", "bedava takipçi"),
    ("bedava   takipci kazan", "bedava takipçi"),
    ("Use PROMO CODE xyz", "promo code"),
    ("İNDİRİM kodu burada", "indirim kodu"),
])
def test_blocklist_is_case_and_turkish_letter_insensitive(text: str, entry: str) -> None:
    noise = NoiseFilter(blocklist=["bedava takipçi", "promo code", "İndirim Kodu"])
    expected = entry if entry != "indirim kodu" else "İndirim Kodu"
    assert noise.reason(raw(1, text), 1, RepeatLog()) == f"noise: blocklist {expected!r}"


def test_blocklist_matches_whole_words_only() -> None:
    noise = NoiseFilter(blocklist=["bet"])
    assert noise.reason(raw(1, "Alphabet hisseleri"), 1, RepeatLog()) is None
    assert noise.reason(raw(2, "place a bet now"), 1, RepeatLog()) == "noise: blocklist 'bet'"


def test_the_fourth_copy_within_the_window_is_repeated() -> None:
    noise, log = NoiseFilter(repeat_limit=3, repeat_window=timedelta(hours=1)), RepeatLog()
    texts = ["Kargom nerede?", "kargom   NEREDE?", "Kargom nerede? https://t.co/a",
             "Kargom nerede? https://t.co/b"]
    verdicts = [noise.reason(raw(i, t, T0 + timedelta(minutes=i)), 7, log)
                for i, t in enumerate(texts)]
    assert verdicts == [None, None, None, "noise: repeated"]


def test_copies_outside_the_window_or_by_others_do_not_count() -> None:
    noise = NoiseFilter(repeat_limit=1, repeat_window=timedelta(hours=1))
    log = RepeatLog.of([(7, "Kargom nerede?", T0 - timedelta(hours=2)),
                        (8, "Kargom nerede?", T0 - timedelta(minutes=5))])
    assert noise.reason(raw(1, "Kargom nerede?"), 7, log) is None
    assert noise.reason(raw(2, "Kargom nerede?", T0 + timedelta(minutes=1)), 7, log) == (
        "noise: repeated")


def test_emoji_only_posts_can_repeat_but_empty_ones_never_do() -> None:
    noise, log = NoiseFilter(repeat_limit=1), RepeatLog()
    assert [noise.reason(raw(i, "😡"), 1, log) for i in range(2)] == [None, "noise: repeated"]
    assert [noise.reason(raw(i, "  "), 1, log) for i in range(3)] == [None, None, None]


def test_normalisation() -> None:
    assert casefold("  İADE   Istiyorum ") == "iade istiyorum"
    assert repeat_key("Kargo  www.x.com/1 NEREDE") == "kargo nerede"


def test_config_defaults_and_validation() -> None:
    assert NoiseConfig() == NoiseConfig(blocklist=[], repeat_window="1h", repeat_limit=3)
    assert NoiseConfig(blocklist="spam").blocklist == ["spam"]
    with pytest.raises(ValueError):
        NoiseConfig(repeat_limit=0)
    with pytest.raises(ConfigError):
        make_config("sqlite+aiosqlite:///x.db", noise={"blocklist": ["x"], "typo": 1})


# ---------------------------------------------------------------- stored, never queued
class Scripted:
    kind: ClassVar[str] = "replay"
    polled: ClassVar[bool] = True

    def __init__(self, batches: list[list[RawItem]]):
        self.batches = batches

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        n = int(cursor or 0)
        return Batch(items=self.batches[n] if n < len(self.batches) else [], cursor=str(n + 1))

    async def close(self) -> None:
        pass


async def poll_all(db_url: str, clock: Any, enricher: Any, batches: list[list[RawItem]]
                   ) -> dict[str, tuple[Mention, str | None]]:
    """Poll each batch in turn; external_id → (mention, reason in its ingested event)."""
    config = make_config(
        db_url, sources=[{"id": "demo", "kind": "replay", "path": str(Path("unused.jsonl")),
                          "interval": "5s"}],
        noise={"blocklist": ["bedava takipçi"], "repeat_window": "1h", "repeat_limit": 2})
    services = build_services(config, clock=clock, enricher=enricher)
    services.coordinator.sources["demo"].connector = Scripted(batches)
    await prepare_database(services, migrate=True)
    for _ in batches:
        services.coordinator.sources["demo"].not_before = None
        assert await services.coordinator.poll("demo") == "ok"
    async with services.store.read() as session:
        mentions = {m.id: m for m in await session.scalars(select(Mention))}
        events = {e.mention_id: e.data["reason"] for e in await session.scalars(
            select(MentionEvent).where(MentionEvent.kind == "ingested"))}
    await services.store.close()
    return {m.external_id: (m, events[m.id]) for m in mentions.values()}


async def test_each_noise_reason_is_stored_ignored_without_a_deadline(
        db_url: str, clock: Any, enricher: Any) -> None:
    now = clock.now()
    first = [raw(1, "RT @veli: Kargom 5 gündür gelmedi, rezalet", now - timedelta(minutes=9)),
             raw(2, "Boost", now - timedelta(minutes=9), handle="boo", repost=True),
             raw(3, "BEDAVA TAKİPÇİ kazan", now - timedelta(minutes=8), handle="spam"),
             raw(4, "Siparişim nerede?", now - timedelta(minutes=7), handle="can"),
             raw(5, "Siparişim nerede?", now - timedelta(minutes=6), handle="can")]
    second = [raw(6, "siparişim  NEREDE?", now - timedelta(minutes=2), handle="can"),
              raw(7, "Siparişim nerede?", now - timedelta(minutes=1), handle="deniz")]
    stored = await poll_all(db_url, clock, enricher, [first, second])
    assert {key: (m.status != "ignored", reason) for key, (m, reason) in stored.items()} == {
        "1": (False, "noise: repost"),
        "2": (False, "noise: repost"),
        "3": (False, "noise: blocklist 'bedava takipçi'"),
        "4": (True, None),
        "5": (True, None),
        "6": (False, "noise: repeated"),  # third copy from can, limit 2, across polls
        "7": (True, None),  # same words, another author
    }
    for key in "1236":
        mention = stored[key][0]
        assert mention.deadline_at is None and mention.assignee is None
        assert mention.sentiment is not None  # still enriched, for history and search
    assert stored["4"][0].deadline_at is not None


async def test_a_burst_in_one_poll_is_caught(db_url: str, clock: Any, enricher: Any) -> None:
    now = clock.now()
    burst = [raw(i, "Kargo bedava mı?", now - timedelta(minutes=10 - i)) for i in range(4)]
    stored = await poll_all(db_url, clock, enricher, [burst])
    assert [stored[str(i)][1] for i in range(4)] == [None, None, "noise: repeated",
                                                     "noise: repeated"]


async def test_old_copies_outside_the_window_do_not_count(
        db_url: str, clock: Any, enricher: Any) -> None:
    now = clock.now()
    batches = [[raw(1, "Kargom?", now - timedelta(hours=5)),
                raw(2, "Kargom?", now - timedelta(hours=4))],
               [replace(raw(3, "Kargom?", now - timedelta(minutes=1)))]]
    stored = await poll_all(db_url, clock, enricher, batches)
    assert stored["3"][1] is None and stored["3"][0].status != "ignored"
