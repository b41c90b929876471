"""Share of voice over a generated week of mentions about three brands (ours and two
competitors), pushed through the real pipeline on SQLite and PostgreSQL: the report and
`listener_brand_mentions_total` against a tally the test keeps itself, and competitor
mentions stored and counted but never queued."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from connectors.base import RawAuthor, RawItem
from listener import db
from listener.app import build_services, prepare_database
from listener.models import OPEN_STATUSES, Mention, MentionEvent, UTCDateTime
from listener.pipeline.ingest import SourceInfo
from listener.reports import DateRange
from listener.share_of_voice import ShareOfVoice, Slice, share_of_voice
from tests.conftest import IST, make_config

FORM = SourceInfo("site-form", "webhook")
RIVAL_FEED = SourceInfo("rival-feed", "webhook")  # declares `brand: rival`
BRANDS = ["ours", "rival", "Paketçi"]
CHANNELS = ("twitter", "reddit", "mastodon")
FIRST, LAST = date(2026, 11, 16), date(2026, 11, 22)  # Monday to Sunday, before the clock
# How each brand is named in a generated text ("" names nothing: ours by default, or the
# source's brand on the rival feed).
NAMED = {"ours": ["Acme", "@acme", "ACME EXPRESS", ""], "rival": ["Rival kargo", "RİVAL", "@rival"],
         "Paketçi": ["Paketçi", "PAKETÇİ"]}
TEXTS = {  # {b}: the brand as named; the class is what the enricher makes of the text
    "negative": [("{b} kargom üç haftadır gelmedi, rezalet!", "tr"),
                 ("Terrible support {b}, still waiting for a refund", "en")],
    "neutral": [("{b} siparişim nerede?", "tr"), ("Where is my order {b}?", "en")],
    "positive": [("Teşekkürler {b}, harika hizmet", "tr"),
                 ("Great service {b}, thank you so much", "en")],
}


def mood(score: float) -> str:
    """The test's own reading of the documented thresholds."""
    return "negative" if score <= -0.3 else "positive" if score >= 0.3 else "neutral"


@dataclass(frozen=True)
class Generated:
    source: SourceInfo
    item: RawItem
    brand: str
    counted: bool


class Week:
    """Mentions posted from `FIRST` to `LAST` (local days), a few just outside, and a few
    that are not counted: brands' own posts and a repost."""

    def __init__(self, seed: int = 10):
        self.rng = random.Random(seed)
        self.mentions: list[Generated] = []

    def add(self, brand: str, posted: datetime, klass: str | None = None, *,
            source: SourceInfo = FORM, channel: str | None = None, handle: str | None = None,
            text: str | None = None, counted: bool = True) -> None:
        n = len(self.mentions)
        channel = channel or self.rng.choice(CHANNELS)
        named = self.rng.choice([b for b in NAMED[brand]
                                 if channel == "twitter" or not b.startswith("@")])
        if source is RIVAL_FEED:
            named = ""  # the source says whose it is
        template, lang = self.rng.choice(TEXTS[klass or self.rng.choice(list(TEXTS))])
        body = text or " ".join(template.format(b=named).split())
        item = RawItem(external_id=f"m-{n}", text=body, lang=lang, created_at=posted,
                       channel=channel, author=RawAuthor(handle or f"customer{n % 97}"),
                       url=f"https://social.example/{n}")
        self.mentions.append(Generated(source, item, brand, counted))

    def generate(self) -> Week:
        for offset in range((LAST - FIRST).days + 1):
            day = FIRST + timedelta(days=offset)
            midnight = datetime.combine(day, time(), tzinfo=IST)
            self.add("ours", midnight)  # the first second of the local day
            self.add("rival", midnight + timedelta(days=1, seconds=-1))  # its last second
            for _ in range(self.rng.randint(25, 40)):
                brand = self.rng.choices(BRANDS, weights=(5, 3, 2))[0]
                posted = midnight + timedelta(seconds=self.rng.randrange(86400))
                source = RIVAL_FEED if brand == "rival" and self.rng.random() < 0.3 else FORM
                self.add(brand, posted, source=source)
        monday = datetime.combine(FIRST, time(9), tzinfo=IST)
        for klass in TEXTS:  # every class on every brand at least once
            for brand in BRANDS:
                self.add(brand, monday, klass, channel="reddit")
        # Ties: our brand named next to a competitor is ours.
        self.add("ours", monday, text="Rival kargo mu Acme mi, ikisi de geç kaldı")
        self.add("ours", monday, channel="twitter", text="@acme, Paketçi bile daha hızlı")
        # Written to us (a contact form): ours, whatever it names.
        self.add("ours", monday, channel="web", text="Rival kargo daha hızlı, iptal edin")
        # Just outside the range: counted by the metric, never by this week's report.
        self.add("ours", datetime.combine(FIRST, time(), tzinfo=IST) - timedelta(seconds=1))
        self.add("Paketçi", datetime.combine(LAST + timedelta(days=1), time(), tzinfo=IST))
        # Not counted: our own reply, the rival's own post, a repost.
        self.add("ours", monday, channel="twitter", handle="acme", counted=False,
                 text="@customer1 Çok üzgünüz, hemen bakıyoruz")
        self.add("rival", monday, channel="twitter", handle="rival", counted=False,
                 text="Bugün sipariş verene kargo bedava!")  # names no one: the author
        self.add("rival", monday, counted=False,
                 text="RT @someone: Rival kargo rezalet, paketim kayboldu")
        return self


async def ingest(services: Any, week: Week) -> None:
    for source in (FORM, RIVAL_FEED):
        items = [g.item for g in week.mentions if g.source is source]
        for start in range(0, len(items), 100):
            await services.pipeline.ingest(source, items[start:start + 100])


def config(db_url: str) -> Any:
    return make_config(
        db_url,
        sources=[{"id": "site-form", "kind": "webhook", "secret": "s3cret-hook"},
                 {"id": "rival-feed", "kind": "webhook", "secret": "s3cret-feed",
                  "brand": "rival"}],
        brand_keywords=["acme", "acme express"],
        competitors=[
            {"name": "rival", "handles": {"twitter": ["rival"]},
             "keywords": ["rival", "rival kargo"]},
            {"name": "Paketçi", "keywords": ["paketçi"]},
        ],
    )


@pytest.fixture
async def stored(db_url: str, clock: Any, enricher: Any) -> Any:
    services = build_services(config(db_url), clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    week = Week().generate()
    await ingest(services, week)
    yield services, week
    await services.store.close()


@dataclass
class Tally:
    mentions: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    total: float = 0.0


def expected(week: Week, enricher: Any, first: date, last: date
             ) -> dict[tuple[date, str, str], Tally]:
    """(local day, brand, channel) → the tally, straight from the generated items."""
    tallies: dict[tuple[date, str, str], Tally] = defaultdict(Tally)
    for g in week.mentions:
        day = g.item.created_at.astimezone(IST).date()
        if not g.counted or not first <= day <= last:
            continue
        score = enricher.enrich(g.item.text, None, g.item.lang).sentiment
        tally = tallies[(day, g.brand, g.item.channel)]
        tally.mentions += 1
        tally.total += score
        setattr(tally, mood(score), getattr(tally, mood(score)) + 1)
    return tallies


def summed(tallies: dict[tuple[date, str, str], Tally], day: date | None = None,
           channel: str | None = None) -> dict[str, Tally]:
    """Per brand, over one day and/or one channel (None: all of them)."""
    out = {brand: Tally() for brand in BRANDS}
    for (on, brand, where), tally in tallies.items():
        if day in (None, on) and channel in (None, where):
            into = out[brand]
            for name in ("mentions", "negative", "neutral", "positive", "total"):
                setattr(into, name, getattr(into, name) + getattr(tally, name))
    return out


def assert_slice(part: Slice, want: dict[str, Tally]) -> None:
    everyone = sum(t.mentions for t in want.values())
    assert part.mentions == everyone
    for brand, tally in want.items():
        figures = part.brands[brand]
        assert (figures.mentions, figures.by_sentiment) == (tally.mentions, {
            "negative": tally.negative, "neutral": tally.neutral, "positive": tally.positive})
        if tally.mentions:
            assert part.share(brand) == pytest.approx(100 * tally.mentions / everyone)
            assert figures.mean_sentiment == pytest.approx(tally.total / tally.mentions)
        else:
            assert figures.mean_sentiment is None
            assert part.share(brand) == (0.0 if everyone else None)


def assert_report(report: ShareOfVoice, tallies: dict[tuple[date, str, str], Tally]) -> None:
    rng = report.range
    assert report.brands == BRANDS
    assert list(report.days) == rng.days
    assert_slice(report.total, summed(tallies))
    channels = sorted({channel for _, _, channel in tallies})
    assert list(report.channels) == channels
    for channel in channels:
        assert_slice(report.channels[channel], summed(tallies, channel=channel))
    for day in rng.days:
        assert_slice(report.days[day], summed(tallies, day=day))
        that_day = sorted({c for d, _, c in tallies if d == day})
        assert list(report.day_channels[day]) == that_day
        for channel in that_day:
            assert_slice(report.day_channels[day][channel], summed(tallies, day, channel))


async def report_for(services: Any, first: date, last: date) -> ShareOfVoice:
    async with services.store.read() as session:
        return await share_of_voice(session, DateRange(first, last, IST),
                                    services.pipeline.brands.names)


async def test_the_report_matches_a_tally_of_the_generated_week(stored: Any,
                                                                enricher: Any) -> None:
    services, week = stored
    tallies = expected(week, enricher, FIRST, LAST)
    assert {brand for _, brand, _ in tallies} == set(BRANDS)
    for klass in ("negative", "neutral", "positive"):  # the texts cover every class
        assert all(sum(getattr(t, klass) for (_, b, _), t in tallies.items() if b == brand)
                   for brand in BRANDS), klass
    report = await report_for(services, FIRST, LAST)
    assert_report(report, tallies)
    assert report.total.mentions > 200

    # A range boundary is a local midnight: Wednesday to Friday, and one day alone.
    wed, fri = FIRST + timedelta(days=2), FIRST + timedelta(days=4)
    assert_report(await report_for(services, wed, fri), expected(week, enricher, wed, fri))
    assert_report(await report_for(services, LAST, LAST),
                  expected(week, enricher, LAST, LAST))


async def test_the_metric_counts_the_same_mentions_as_they_are_stored(
        stored: Any, enricher: Any) -> None:
    services, week = stored
    everything = expected(week, enricher, date.min, date.max)
    per_label: dict[tuple[str, str, str], int] = defaultdict(int)
    for (_, brand, channel), tally in everything.items():
        for klass in ("negative", "neutral", "positive"):
            per_label[(brand, channel, klass)] += getattr(tally, klass)
    registry = services.metrics.registry
    for (brand, channel, klass), count in per_label.items():
        value = registry.get_sample_value("listener_brand_mentions_total", {
            "brand": brand, "channel": channel, "sentiment": klass})
        assert (value or 0) == count, (brand, channel, klass)
    counted = sum(1 for g in week.mentions if g.counted)
    total = sum(sample.value for metric in registry.collect()
                if metric.name == "listener_brand_mentions"
                for sample in metric.samples if sample.name.endswith("_total"))
    assert total == counted == sum(per_label.values())


async def test_competitor_mentions_are_stored_and_enriched_but_never_queued(
        stored: Any) -> None:
    services, week = stored
    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
        reasons = {event.mention_id: event.data["reason"] for event in await session.scalars(
            select(MentionEvent).where(MentionEvent.kind == "ingested"))}
    assert len(rows) == len(week.mentions)
    for g in week.mentions:
        row = rows[g.item.external_id]
        assert (row.brand, row.counted) == (g.brand, g.counted), g.item.text
        assert row.lang is not None  # enriched like ours
        if g.brand == "ours":
            continue
        assert row.status == "ignored" and row.assignee is None
        assert (row.deadline_at, row.sla_policy, row.next_alert_at) == (None, None, None)
        assert reasons[row.id] == f"competitor: {g.brand}"
    queued = [m for m in rows.values() if m.status in OPEN_STATUSES]
    assert queued and {m.brand for m in queued} == {"ours"}
    assert all(m.deadline_at is not None for m in queued)
    own = rows[next(g.item.external_id for g in week.mentions if g.item.author.handle == "acme")]
    assert (own.status, own.brand, own.counted) == ("ignored", "ours", False)


def upgrade_to(revision: str) -> Any:
    def run(connection: Any) -> None:
        config = db.alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return run


async def test_mentions_stored_before_brands_are_ours_and_count_unless_ignored(
        db_url: str, clock: Any, enricher: Any) -> None:
    """An upgrade keeps last week's report: what was stored before is our brand's, except
    what was stored ignored (the brand's own posts, noise)."""
    engine = db.create_engine(db_url)
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to("0009"))
    old = sa.Table("mentions", sa.MetaData(), *(sa.Column(name, kind) for name, kind in (
        ("source", sa.String), ("channel", sa.String), ("external_id", sa.String),
        ("text", sa.Text), ("sentiment", sa.Float), ("priority", sa.String),
        ("status", sa.String), ("created_at", UTCDateTime), ("ingested_at", UTCDateTime))))
    posted = datetime(2026, 11, 20, 10, tzinfo=IST)
    rows = [("w-1", "new", -0.8), ("w-2", "responded", 0.6), ("w-3", "closed", 0.0),
            ("w-4", "ignored", -0.9)]
    async with engine.begin() as connection:
        await connection.execute(sa.insert(old), [
            {"source": "site-form", "channel": "web", "external_id": key, "text": "...",
             "sentiment": score, "priority": "normal", "status": status,
             "created_at": posted, "ingested_at": posted} for key, status, score in rows])
        await connection.run_sync(upgrade_to("head"))
    await engine.dispose()

    services = build_services(config(db_url), clock=clock, enricher=enricher)
    report = await report_for(services, posted.date(), posted.date())
    await services.store.close()
    ours = report.total.brands["ours"]
    assert (report.total.mentions, ours.mentions, ours.by_sentiment) == (
        3, 3, {"negative": 1, "neutral": 1, "positive": 1})
    assert report.total.share("ours") == 100.0
    assert ours.mean_sentiment == pytest.approx((-0.8 + 0.6 + 0.0) / 3)
