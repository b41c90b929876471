"""The crisis alert: a surge of negative mentions is alerted once per spike, to the sinks
that take `spike`, with the angriest mentions as examples."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from connectors.base import RawAuthor, RawItem
from listener.app import build_services, prepare_database, spike_watch
from listener.models import Mention, OutboxAlert, SpikeState
from listener.pipeline.ingest import SourceInfo
from listener.store.spike import angriest, negative_counts
from responders.alerts.base import Alert
from responders.alerts.message import PLAIN, spike
from sla.spike import (
    END_SHARE,
    alert_due,
    baseline,
    in_spike,
    spike_state,
    threshold,
    windows,
)
from tests.conftest import MONDAY_10, make_config

# -- the pure rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "usual", "ratio", "min_count", "expected"), [
    (17, 6, 3, 10, False),  # 3 × 6 = 18 needed
    (18, 6, 3, 10, True),
    (9, 1, 3, 10, False),   # never below min_count
    (10, 0, 3, 10, False),  # an hour that is usually empty: the floor (5) makes it 15
    (14, 0, 3, 10, False),
    (15, 0, 3, 10, True),
    (14, 4.9, 3, 10, False),  # a baseline under the floor counts as the floor
    (10, 2, 2, 10, True),   # ratio × floor = 10 = min_count
    (59, 20, 3, 10, False),  # a busy hour needs a busy spike
    (60, 20, 3, 10, True),
    (1, 0, 1.5, 1, True),   # min_count 1, ratio 1.5: one mention is enough
])
def test_a_spike_needs_min_count_and_ratio_times_the_usual(
        count: int, usual: float, ratio: float, min_count: int, expected: bool) -> None:
    assert spike_state(count, usual, ratio, min_count) is expected


@pytest.mark.parametrize(("weeks", "usual"), [
    ([], 0.0),
    ([6, 6, 6, 6], 6.0),
    ([6, 40, 6, 6], 6.0),   # an earlier crisis does not raise the bar for this one
    ([5, 6, 7, 8], 6.5),
    ([0, 0, 0, 12], 0.0),
])
def test_the_usual_level_is_the_median_of_earlier_weeks(weeks: list[int], usual: float) -> None:
    assert baseline(weeks) == usual


@pytest.mark.parametrize(("was", "now", "alert"), [
    (False, False, False), (False, True, True), (True, True, False), (True, False, False)])
def test_only_the_start_of_a_spike_is_alerted(was: bool, now: bool, alert: bool) -> None:
    assert alert_due(was, now) is alert


def test_a_spike_ends_only_well_below_the_level_that_started_it() -> None:
    assert threshold(6, 3, 10) == 18
    assert in_spike(False, 15, 6, 3, 10) is False   # not enough to start one
    assert in_spike(True, 15, 6, 3, 10) is True     # enough to keep one going (≥ 14.4)
    assert in_spike(True, 14, 6, 3, 10) is False    # below 80 %: over
    assert END_SHARE * threshold(6, 3, 10) == pytest.approx(14.4)


observations = st.lists(st.tuples(st.integers(0, 120), st.floats(0, 40)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(seen=observations, ratio=st.floats(1.01, 10), min_count=st.integers(1, 50))
def test_alerts_never_repeat_within_one_spike(seen: list[tuple[int, float]], ratio: float,
                                              min_count: int) -> None:
    was, states, alerts = False, [], []
    for index, (count, usual) in enumerate(seen):
        now = in_spike(was, count, usual, ratio, min_count)
        if alert_due(was, now):
            alerts.append(index)
        if was and count >= threshold(usual, ratio, min_count):
            assert now, "a spike never ends while the count is at its starting level"
        states.append(now)
        was = now
    starts = [i for i, state in enumerate(states) if state and (i == 0 or not states[i - 1])]
    assert alerts == starts
    for first, second in itertools.pairwise(alerts):
        assert not all(states[first:second]), "two alerts without the spike ending between"


def test_earlier_weeks_are_the_same_wall_clock_hour_across_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    monday = datetime(2026, 3, 30, 10, 0, tzinfo=berlin)  # the day after clocks went forward
    [now, week_before] = windows(monday, timedelta(hours=1), 1, berlin)
    assert now == (datetime(2026, 3, 30, 7, tzinfo=UTC), datetime(2026, 3, 30, 8, tzinfo=UTC))
    assert week_before == (datetime(2026, 3, 23, 8, tzinfo=UTC),
                           datetime(2026, 3, 23, 9, tzinfo=UTC))
    spans = windows(monday, timedelta(minutes=30), 4)
    assert [end - start for start, end in spans] == [timedelta(minutes=30)] * 5
    assert [spans[0][1] - end for _, end in spans] == [timedelta(weeks=k) for k in range(5)]


# -- a generated month of mentions, through the real pipeline, on both databases -------------

SOURCE = SourceInfo("site-form", "webhook")
GRUMBLES = [  # the everyday negative mentions: sentiment -0.76 … -0.79
    ("Kargom üç haftadır gelmedi, rezalet!", "tr"),
    ("Terrible support, still waiting for a refund", "en"),
    ("Siparişim hâlâ gelmedi, çok kötü", "tr"),
    ("The app keeps crashing, awful", "en"),
    ("Disappointed, the package was damaged", "en"),
    ("Bu ne rezalet, hâlâ bekliyorum", "tr"),
]
NOT_NEGATIVE = [
    ("Where is my order?", "en"),         # 0.0
    ("İade ne zaman yapılacak?", "tr"),   # -0.25: not below -0.25
    ("Teşekkürler, harika hizmet", "tr"),  # pleased
]
FURIOUS = [  # the burst's angriest, in the order an alert lists them
    ("Rezalet, berbat, iğrenç, dolandırıcı, en kötü şirket!!", "tr"),  # -0.956
    ("Absolutely horrible, scam, worst company ever", "en"),           # -0.938
    ("Rezalet, berbat, iğrenç bir hizmet!!", "tr"),                     # -0.862
]
BRAND_POST = ("We are so sorry, this is terrible, worst delay ever, awful", "en")  # -0.938
CHANNELS = ("twitter", "web", "mastodon")


def item(key: str, at: datetime, text: tuple[str, str], n: int,
         handle: str | None = None) -> RawItem:
    channel = "twitter" if handle == "acme" else CHANNELS[n % 3]
    handle = handle or f"customer{n % 500}"
    return RawItem(external_id=key, text=text[0], lang=text[1], created_at=at, channel=channel,
                   author=RawAuthor(handle, handle.title()), url=f"https://social.example/{key}")


def generated_month(monday: datetime) -> list[RawItem]:
    """Four weeks before `monday`, and `monday` until 18:00, hour by hour: in business
    hours (Mon–Fri 09–18) six negative mentions at :05, :15 … :55 (so any hour holds six),
    three that are not negative and one negative brand post; otherwise one negative
    mention at :30. Two weeks back, Monday 10:00–10:29 had a crisis of its own."""
    items: list[RawItem] = []
    hour = monday - timedelta(weeks=4)
    while hour < monday.replace(hour=18):
        business = hour.weekday() < 5 and 9 <= hour.hour < 18
        n = len(items)
        if business:
            for i in range(6):
                items.append(item(f"bg-{n + i}", hour + timedelta(minutes=5 + 10 * i),
                                  GRUMBLES[(n + i) % 6], n + i))
            for i, text in enumerate(NOT_NEGATIVE):
                items.append(item(f"bg-{n + 6 + i}", hour + timedelta(minutes=8 + 10 * i),
                                  text, n + 6 + i))
            items.append(item(f"brand-{n}", hour + timedelta(minutes=40), BRAND_POST, n,
                              handle="acme"))
        else:
            items.append(item(f"bg-{n}", hour + timedelta(minutes=30), GRUMBLES[n % 6], n))
        hour += timedelta(hours=1)
    crisis = (monday - timedelta(weeks=2)).replace(hour=10)
    items += [item(f"old-crisis-{i}", crisis + timedelta(minutes=i), GRUMBLES[i % 6], i)
              for i in range(30)]
    return items


def burst(name: str, start: datetime, size: int, furious: dict[int, int]) -> list[RawItem]:
    """One negative mention a minute; `furious` puts FURIOUS[j] at minute i."""
    texts = {i: FURIOUS[j] for i, j in furious.items()}
    return [item(f"{name}-{i}", start + timedelta(minutes=i), texts.get(i, GRUMBLES[i % 6]),
                 i, handle=f"{name}{i}") for i in range(size)]


class Month:
    """The generated mentions, ingested as the clock reaches their posting time."""

    def __init__(self, items: list[RawItem]):
        self.waiting = sorted(items, key=lambda i: i.created_at)

    async def arrive(self, services: Any, until: datetime) -> None:
        services.clock.moment = until
        due = [i for i in self.waiting if i.created_at < until]
        self.waiting = self.waiting[len(due):]
        for start in range(0, len(due), 200):
            await services.pipeline.ingest(SOURCE, due[start:start + 200])


def spike_config(db_url: str) -> Any:
    hook = {"url": "http://127.0.0.1:9/hook", "secret": "s"}
    return make_config(
        db_url,
        server={"api_tokens": ["t"], "public_url": "https://listener.example.com"},
        alerts=[
            {"kind": "webhook", "name": "ops", "on": ["breached", "spike"], **hook},
            {"kind": "slack", "name": "leads", "on": ["spike"],
             "webhook_url": "https://hooks.example/x"},
            {"kind": "webhook", "name": "quiet", "on": ["breached"], **hook},
            {"kind": "webhook", "name": "off", "on": ["spike"], "enabled": False, **hook},
        ])


async def rows_of(services: Any) -> list[OutboxAlert]:
    async with services.store.read() as session:
        return list(await session.scalars(
            select(OutboxAlert).where(OutboxAlert.kind == "spike").order_by(OutboxAlert.id)))


async def spikes_of(services: Any) -> list[SpikeState]:
    async with services.store.read() as session:
        return list(await session.scalars(select(SpikeState).order_by(SpikeState.id)))


def at(hh: int, mm: int) -> datetime:
    return MONDAY_10.replace(hour=hh, minute=mm)


async def test_a_burst_of_negative_mentions_is_alerted_once_per_spike(
        db_url: str, clock: Any, enricher: Any) -> None:
    config = spike_config(db_url)
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    month = Month(generated_month(MONDAY_10.replace(hour=0))
                  + burst("first", at(10, 0), 24, {3: 1, 1: 0, 7: 2})
                  + burst("second", at(14, 0), 25, {}))
    watch = spike_watch(services)

    async def check(when: datetime) -> int:
        await month.arrive(services, when)
        return await watch.check(when)

    def gauge(name: str) -> float | None:
        return services.metrics.registry.get_sample_value(name)

    assert await check(at(10, 0)) == 0  # an ordinary Monday morning
    assert (gauge("listener_negative_mentions_window"),
            gauge("listener_negative_mentions_baseline")) == (6, 6)
    assert await check(at(10, 10)) == 0  # 10 of the burst + 6 usual = 16 < 3 × 6
    assert await check(at(10, 12)) == 2  # 18: a spike, to the two sinks taking `spike`

    [ops, leads] = await rows_of(services)
    assert (ops.sink, leads.sink) == ("ops", "leads")
    started = at(10, 12).astimezone(UTC).isoformat()
    assert ops.dedupe_key == f"spike:{started}:ops" and ops.mention_id is None
    assert ops.payload == leads.payload
    payload = ops.payload
    assert {k: payload[k] for k in ("kind", "moment_at", "count", "baseline", "window")} == {
        "kind": "spike", "moment_at": started, "count": 18, "baseline": 6, "window": "1h"}
    examples = payload["examples"]
    assert [e["text"] for e in examples] == [text for text, _ in FURIOUS]  # not the brand's
    assert [e["author"]["handle"] for e in examples] == ["first1", "first3", "first7"]
    assert examples[0]["dashboard_url"].startswith("https://listener.example.com/mentions/")
    assert {e["channel"] for e in examples} <= set(CHANNELS)
    message = spike(Alert(ops.id, "ops", "spike", ops.dedupe_key, payload, at(10, 12)), PLAIN)
    assert message.splitlines()[0] == "Mention spike: 18 mentions in 1h (usually 6)"
    assert (gauge("listener_negative_mentions_window"),
            gauge("listener_negative_mentions_baseline")) == (18, 6)

    assert await check(at(10, 15)) == 0  # still the same spike
    assert await check(at(10, 20)) == 0
    await services.store.close()

    services = build_services(config, clock=clock, enricher=enricher)  # a restart mid-spike
    await prepare_database(services, migrate=True)
    watch = spike_watch(services)
    assert await check(at(10, 30)) == 0
    assert await check(at(11, 15)) == 0  # 15 left in the window: below 18, above 80 %
    [first] = await spikes_of(services)
    assert first.ended_at is None and first.peak_count == 30  # at 10:30: 24 + 6
    assert await check(at(11, 20)) == 0  # 10: the spike is over
    [first] = await spikes_of(services)
    assert first.ended_at == at(11, 20)

    assert await check(at(14, 10)) == 0  # 10 + 6
    assert await check(at(14, 30)) == 2  # a new spike is a new alert
    rows = await rows_of(services)
    assert [(r.sink, r.payload["count"]) for r in rows] == [
        ("ops", 18), ("leads", 18), ("ops", 31), ("leads", 31)]
    assert len({r.dedupe_key for r in rows}) == 4
    assert [s.ended_at is None for s in await spikes_of(services)] == [False, True]
    await services.store.close()


async def test_one_grouped_query_counts_each_window_without_brand_posts_or_mild_ones(
        db_url: str, clock: Any, enricher: Any) -> None:
    """The oracle is a plain filter over the generated month."""
    services = build_services(spike_config(db_url), clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    items = generated_month(MONDAY_10.replace(hour=0))
    await Month(items).arrive(services, MONDAY_10)
    async with services.store.write() as session:  # answered or closed, a complaint counts
        await session.execute(update(Mention).where(Mention.status != "ignored",
                                                    Mention.created_at < at(9, 30))
                              .values(status="closed"))
    negative = [i.created_at for i in items if i.author.handle != "acme"
                and enricher.enrich(i.text, None, i.lang).sentiment < -0.25]
    tz = ZoneInfo("Europe/Istanbul")
    checked = []
    for when in (at(9, 40), at(3, 0), MONDAY_10 - timedelta(weeks=2, minutes=-25)):
        spans = windows(when, timedelta(hours=1), 4, tz)
        async with services.store.read() as session:
            counts = await negative_counts(session, spans, -0.25)
            examples = await angriest(session, *spans[0], -0.25)
        assert counts == [sum(start <= c < end for c in negative) for start, end in spans]
        assert all(m.sentiment < -0.25 and a.handle != "acme" for m, a in examples)
        checked.append(counts)
    assert checked == [[4, 4, 4, 4, 4], [1, 1, 1, 1, 1], [31, 6, 6, 0, 0]]  # 8:30 is night
    await services.store.close()
