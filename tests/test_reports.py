"""The report figures against an independent computation over the same generated mentions,
stored in SQLite and PostgreSQL; the date range; the nearest-rank percentiles."""

from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import event

from listener.app import prepare_database
from listener.models import Mention
from listener.reports import (
    DateRange,
    RangeError,
    parse_range,
    percentile,
    sla_report,
    team_figures,
)
from listener.store.actions import mark_responded
from tests.conftest import IST, MONDAY_10

CHANNELS = ("twitter", "web", "email", "mastodon")
AGENTS = ("ayse", "john", None)
POLICIES = ("social-same-day", "same-day", "vip-2h")
NEGATIVE_BELOW = -0.25  # the config default, spike.sentiment_below
BUCKET_MINUTES = (15, 30, 60, 120, 240, 480, 1440)


@dataclass(frozen=True)
class Spec:
    """One generated mention, as the test knows it (not as the code under test reads it)."""

    channel: str
    agent: str | None
    policy: str | None
    created: datetime
    deadline: datetime | None
    responded: datetime | None
    sentiment: float
    ignored: bool = False


def generate(now: datetime, days: int = 12, count: int = 220, seed: int = 7) -> list[Spec]:
    """Mentions over the `days` before `now`: answered early, late or not at all, some
    not due yet, some without a deadline, some noise; plus edge cases at the boundaries."""
    rng = random.Random(seed)
    start = now - timedelta(days=days)
    specs = []
    for _ in range(count):
        created = start + timedelta(minutes=rng.randrange(0, days * 24 * 60))
        sentiment = round(rng.uniform(-1, 1), 3)
        channel, agent = rng.choice(CHANNELS), rng.choice(AGENTS)
        if rng.random() < 0.08:
            specs.append(Spec(channel, None, None, created, None, None, sentiment, True))
            continue
        policy = rng.choice((*POLICIES, None))
        deadline = created + timedelta(minutes=rng.randrange(30, 14 * 60)) if policy else None
        target = deadline or created + timedelta(hours=3)
        outcome = rng.choice(("early", "late", "never"))
        responded = None
        if outcome == "early":
            responded = created + (target - created) * rng.random()
        elif outcome == "late":
            responded = target + timedelta(minutes=rng.randrange(1, 900))
        if responded is not None and responded > now:
            responded = None
        specs.append(Spec(channel, agent, policy, created, deadline, responded, sentiment))
    midnight = datetime.combine(now.astimezone(IST).date() - timedelta(days=3),
                                datetime.min.time(), tzinfo=IST)
    specs += [
        # answered exactly at the deadline: in time
        Spec("web", "ayse", "same-day", midnight - timedelta(hours=5), midnight,
             midnight, -0.8),
        # deadlines just before and exactly at a local midnight: different days
        Spec("email", "john", "same-day", midnight - timedelta(hours=3),
             midnight - timedelta(seconds=1), None, 0.5),
        Spec("email", None, "same-day", midnight - timedelta(hours=2), midnight, None, 0.1),
        # answered 15 minutes after posting: the second bucket, not the first
        Spec("twitter", "ayse", "social-same-day", midnight + timedelta(hours=9),
             midnight + timedelta(hours=12), midnight + timedelta(hours=9, minutes=15), 0.0),
        # not due yet and unanswered: left out of compliance
        Spec("twitter", "john", "social-same-day", now - timedelta(minutes=20),
             now + timedelta(hours=2), None, -0.3),
    ]
    return specs


async def store(services: Any, specs: list[Spec], first_id: int = 0) -> None:
    await prepare_database(services, migrate=True)
    async with services.store.write() as session:
        for number, spec in enumerate(specs, start=first_id):
            status = ("ignored" if spec.ignored else "responded" if spec.responded
                      else "assigned" if spec.agent else "new")
            session.add(Mention(
                source="site-form", channel=spec.channel, external_id=f"g-{number}",
                text=f"generated {number}", sentiment=spec.sentiment,
                created_at=spec.created, ingested_at=spec.created, status=status,
                assignee=spec.agent, sla_policy=spec.policy, deadline_at=spec.deadline,
                first_response_at=spec.responded))


# -- the independent computation ---------------------------------------------------

def local_day(moment: datetime) -> date:
    return moment.astimezone(IST).date()


def expected_compliance(specs: list[Spec], first: date, last: date, now: datetime,
                        key: Any) -> dict[Any, tuple[int, int, int, Fraction | None]]:
    """(in time, late, breached unanswered, compliance) per group."""
    counts: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0])
    for spec in specs:
        if spec.deadline is None or not first <= local_day(spec.deadline) <= last:
            continue
        group = counts[key(spec)]
        if spec.responded is not None:
            group[0 if spec.responded <= spec.deadline else 1] += 1
        elif spec.deadline <= now:
            group[2] += 1
    return {k: (met, late, breached,
                Fraction(met, met + late + breached) if met + late + breached else None)
            for k, (met, late, breached) in counts.items()}


def nearest_rank(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(Fraction(pct, 100) * len(ordered))) - 1]


def answered_in(specs: list[Spec], first: date, last: date) -> list[Spec]:
    return [s for s in specs if s.responded is not None and not s.ignored
            and first <= local_day(s.responded) <= last]


def seconds(spec: Spec) -> float:
    assert spec.responded is not None
    return (spec.responded - spec.created).total_seconds()


def assert_compliance(actual: dict[Any, Any], expected: dict[Any, Any]) -> None:
    assert set(actual) == set(expected)
    for key, (met, late, breached, ratio) in expected.items():
        figures = actual[key]
        assert (figures.met, figures.missed, figures.breached) == (met, late, breached), key
        if ratio is None:
            assert figures.ratio is None
        else:
            assert figures.ratio == pytest.approx(float(ratio)), key


# -- tests ---------------------------------------------------------------------------

@pytest.fixture
async def services(services: Any) -> Any:
    yield services
    await services.store.close()


async def test_report_figures_match_an_independent_computation(services: Any) -> None:
    now = MONDAY_10
    specs = generate(now)
    await store(services, specs)
    first, last = date(2026, 11, 14), date(2026, 11, 21)
    rng = DateRange(first, last, IST)
    async with services.store.read() as session:
        report = await sla_report(session, rng, now, NEGATIVE_BELOW)

    assert_compliance(report.by_channel,
                      expected_compliance(specs, first, last, now, lambda s: s.channel))
    assert_compliance(report.by_agent,
                      expected_compliance(specs, first, last, now, lambda s: s.agent))
    assert_compliance(report.by_policy,
                      expected_compliance(specs, first, last, now, lambda s: s.policy))
    overall = expected_compliance(specs, first, last, now, lambda s: "all")["all"]
    assert (report.overall.met, report.overall.missed, report.overall.breached) == overall[:3]
    assert report.overall.met > 10 and report.overall.missed > 10 and report.overall.breached > 5

    answered = answered_in(specs, first, last)
    assert report.responses.count == len(answered)
    assert report.responses.p50 == nearest_rank([seconds(s) for s in answered], 50)
    assert report.responses.p90 == nearest_rank([seconds(s) for s in answered], 90)
    for channel in CHANNELS:
        mine = [seconds(s) for s in answered if s.channel == channel]
        stats = report.responses_by_channel[channel]
        assert (stats.count, stats.p50, stats.p90) == (
            len(mine), nearest_rank(mine, 50), nearest_rank(mine, 90))
        for day in rng.days:
            cell = [seconds(s) for s in answered
                    if s.channel == channel and local_day(s.responded) == day]
            got = report.responses_by_channel_day.get((channel, day))
            if not cell:
                assert got is None
            else:
                assert got is not None
                assert (got.count, got.p50, got.p90) == (
                    len(cell), nearest_rank(cell, 50), nearest_rank(cell, 90))
        buckets = [0] * (len(BUCKET_MINUTES) + 1)
        for value in mine:
            buckets[bisect.bisect_right([m * 60 for m in BUCKET_MINUTES], value)] += 1
        assert report.distribution[channel] == buckets
    for day in rng.days:
        that_day = [seconds(s) for s in answered if local_day(s.responded) == day]
        assert report.responses_by_day[day].count == len(that_day)
        if that_day:
            assert report.responses_by_day[day].p90 == nearest_rank(that_day, 90)

    assert [d.day for d in report.days] == rng.days
    for figures in report.days:
        posted = [s for s in specs if not s.ignored and local_day(s.created) == figures.day]
        assert figures.volume == len(posted)
        assert figures.negative == sum(s.sentiment < NEGATIVE_BELOW for s in posted)
        assert figures.mean_sentiment == pytest.approx(
            sum(s.sentiment for s in posted) / len(posted))
        assert figures.breaches == sum(
            1 for s in specs if s.deadline and local_day(s.deadline) == figures.day
            and ((s.responded is None and s.deadline <= now)
                 or (s.responded is not None and s.responded > s.deadline)))


async def test_mentions_not_yet_due_are_left_out_and_deadlines_split_at_local_midnight(
        services: Any) -> None:
    now = MONDAY_10
    specs = generate(now, count=0)
    await store(services, specs)
    thursday, friday = date(2026, 11, 19), date(2026, 11, 20)
    async with services.store.read() as session:
        before = await sla_report(session, DateRange(thursday, thursday, IST), now, -0.25)
        after = await sla_report(session, DateRange(friday, friday, IST), now, -0.25)
        today = await sla_report(session, DateRange(date(2026, 11, 23), date(2026, 11, 23),
                                                    IST), now, -0.25)
    # Thursday 23:59:59 local: a breach of that day; midnight itself belongs to Friday
    assert before.by_channel["email"].breached == 1 and "web" not in before.by_channel
    assert after.by_channel["web"].met == 1 and after.by_channel["email"].breached == 1
    assert after.by_agent[None].breached == 1
    # the one answered 15 minutes after posting is in the 15m–30m bucket
    assert after.distribution["twitter"][:2] == [0, 1]
    assert today.overall.counted == 0 and today.overall.pending == 1
    assert today.overall.ratio is None


async def test_figures_of_mentions_stored_by_the_real_pipeline(services: Any) -> None:
    """Three tweets at 09:30 Monday under social-same-day (posted before the 16:00 cutoff,
    so due at 18:00 closing): one answered at 11:00, one at 19:00, one never; read on
    Tuesday."""
    from connectors.base import RawAuthor, RawItem
    from listener.pipeline.ingest import SourceInfo

    await prepare_database(services, migrate=True)
    posted = datetime(2026, 11, 23, 9, 30, tzinfo=IST)
    items = [RawItem(external_id=f"t-{n}", text=f"Kargom nerede {n}?", channel="twitter",
                     author=RawAuthor(handle=f"user{n}", name=f"User {n}"), created_at=posted)
             for n in range(3)]
    result = await services.pipeline.ingest(SourceInfo("site-form", "webhook"), items)
    first, second, _ = result.stored
    async with services.store.write() as session:
        await mark_responded(session, first, "ayse", datetime(2026, 11, 23, 11, 0, tzinfo=IST))
        await mark_responded(session, second, "ayse", datetime(2026, 11, 23, 19, 0, tzinfo=IST))
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=IST)
    monday = date(2026, 11, 23)
    async with services.store.read() as session:
        report = await sla_report(session, DateRange(monday, monday, IST), tuesday, -0.25)
    policy = report.by_policy["social-same-day"]
    assert (policy.met, policy.missed, policy.breached) == (1, 1, 1)
    assert report.overall.ratio == pytest.approx(1 / 3)
    assert report.responses.p50 == 90 * 60 and report.responses.p90 == 570 * 60
    assert report.days[0].volume == 3 and report.days[0].breaches == 2


async def test_a_report_takes_three_queries_however_many_mentions(services: Any) -> None:
    specs = generate(MONDAY_10, count=60)
    await store(services, specs)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    rng = DateRange(date(2026, 11, 11), date(2026, 11, 23), IST)
    event.listen(services.store.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with services.store.read() as session:
            small = await sla_report(session, rng, MONDAY_10, -0.25)
        few = len(statements)
        async with services.store.write() as session:
            session.add_all(Mention(source="site-form", channel="web", external_id=f"x-{n}",
                                    created_at=MONDAY_10 - timedelta(hours=n),
                                    ingested_at=MONDAY_10, deadline_at=MONDAY_10,
                                    first_response_at=MONDAY_10 - timedelta(minutes=n),
                                    status="responded", sla_policy="same-day")
                            for n in range(1, 200))
        statements.clear()
        async with services.store.read() as session:
            large = await sla_report(session, rng, MONDAY_10, -0.25)
    finally:
        event.remove(services.store.engine.sync_engine, "before_cursor_execute", count)
    assert few == len(statements) == 3
    assert large.overall.counted == small.overall.counted + 199


async def test_team_figures_today_and_this_week(services: Any) -> None:
    now = datetime(2026, 11, 25, 15, 0, tzinfo=IST)  # a Wednesday
    specs = generate(now, days=9, count=260, seed=11)
    await store(services, specs)
    async with services.store.read() as session:
        figures = await team_figures(session, now, IST)
    today, monday = date(2026, 11, 25), date(2026, 11, 23)
    assert (figures.week.first, figures.week.last) == (monday, date(2026, 11, 29))
    assert_compliance(figures.compliance_today,
                      expected_compliance(specs, today, today, now, lambda s: s.channel))
    assert_compliance(figures.compliance_week,
                      expected_compliance(specs, monday, monday + timedelta(days=6), now,
                                          lambda s: s.channel))
    answered = answered_in(specs, today, today)
    for agent in AGENTS:
        mine = [seconds(s) for s in answered if s.agent == agent]
        stats = figures.answered_today.get(agent)
        if not mine:
            assert stats is None
            continue
        assert stats is not None
        assert (stats.count, stats.p50) == (len(mine), nearest_rank(mine, 50))
    assert sum(s.count for s in figures.answered_today.values()) == len(answered) > 3


def test_nearest_rank_percentiles() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([float(n) for n in range(1, 11)], 50) == 5.0
    assert percentile([float(n) for n in range(10, 0, -1)], 90) == 9.0
    # 90% of 70 is 63 exactly; floating point would make it 63.000001 and round up to 64
    assert percentile([float(n) for n in range(1, 71)], 90) == 63.0
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0 and percentile([1.0, 2.0], 50) == 1.0


def test_date_range_defaults_to_the_last_seven_local_days() -> None:
    still_sunday_in_utc = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # Monday 01:30 local
    rng = parse_range(None, None, still_sunday_in_utc, IST)
    assert (rng.first, rng.last) == (date(2026, 11, 17), date(2026, 11, 23))
    assert rng.start == datetime(2026, 11, 17, tzinfo=IST)
    assert rng.end == datetime(2026, 11, 24, tzinfo=IST)
    assert len(rng.days) == 7
    only_to = parse_range(None, "2026-01-10", MONDAY_10, IST)
    assert only_to.first == date(2026, 1, 4)


@pytest.mark.parametrize(("start", "end", "words"), [
    ("2026-11-31", "2026-12-01", "not a real date"),
    ("23.11.2026", None, "YYYY-MM-DD"),
    ("2026-11-20", "2026-11-10", "after"),
    ("2024-01-01", "2026-11-10", "at most 366 days"),
    ("2026-11-2", None, "YYYY-MM-DD"),
])
def test_unusable_date_ranges_say_why(start: str, end: str | None, words: str) -> None:
    with pytest.raises(RangeError, match=words) as caught:
        parse_range(start, end, MONDAY_10, IST)
    assert caught.value.template.format(**caught.value.fields) == str(caught.value)
