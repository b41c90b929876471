"""`spike.competitors`: a competitor's negative surge is alerted once, as
`competitor_spike`, to the sinks that take it; ours stays the `spike` of the crisis
sinks, and neither fires for the other's mentions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from connectors.base import RawAuthor, RawItem
from listener.app import build_services, prepare_database, spike_watch
from listener.models import OutboxAlert, SpikeState
from listener.pipeline.ingest import SourceInfo
from responders.alerts.base import Alert
from responders.alerts.message import PLAIN, spike, title
from responders.alerts.slack import MRKDWN
from tests.conftest import MONDAY_10, make_config
from tests.sla.test_spike import GRUMBLES

SOURCE = SourceInfo("site-form", "webhook")
HOOK = {"url": "http://127.0.0.1:9/hook", "secret": "s"}


def at(hh: int, mm: int) -> datetime:
    return MONDAY_10.replace(hour=hh, minute=mm)


def config(db_url: str, competitors: bool = True) -> Any:
    return make_config(
        db_url,
        competitors=[{"name": "rival", "handles": {"twitter": ["rival"]},
                      "keywords": ["rival kargo"]}],
        spike={"competitors": competitors},
        alerts=[{"kind": "webhook", "name": "ops", "on": ["breached", "spike"], **HOOK},
                {"kind": "webhook", "name": "sales", "on": ["competitor_spike"], **HOOK},
                {"kind": "webhook", "name": "both", "on": ["spike", "competitor_spike"],
                 "enabled": False, **HOOK}])


def post(key: str, posted: datetime, text: str, lang: str, handle: str,
         channel: str = "reddit") -> RawItem:
    return RawItem(external_id=key, text=text, lang=lang, created_at=posted, channel=channel,
                   author=RawAuthor(handle), url=f"https://social.example/{key}")


def monday() -> list[RawItem]:
    """Our usual grumbles (six an hour, 09:00-17:00); from 10:00 a rival's burst (one
    negative mention a minute for 25 minutes) with what must not count beside it: mild
    rival mentions, the rival's own angry posts, reposts; from 14:00 a burst of ours."""
    items = []
    for hour in range(9, 17):
        items += [post(f"usual-{hour}-{i}", at(hour, 5 + 10 * i), *GRUMBLES[i], f"c{i}")
                  for i in range(6)]
    for i in range(25):
        text, lang = GRUMBLES[i % 6]
        items.append(post(f"rival-{i}", at(10, i), f"Rival kargo: {text}", lang, f"r{i}"))
        items.append(post(f"mild-{i}", at(10, i), "Rival kargo siparişim nerede?", "tr",
                          f"m{i}"))
        items.append(post(f"own-{i}", at(10, i), f"{text} (rival's own account)", lang,
                          "rival", channel="twitter"))
        items.append(post(f"rt-{i}", at(10, i), f"RT @x{i}: Rival kargo {text}", lang,
                          f"rt{i}"))
        items.append(post(f"ours-{i}", at(14, i), f"Acme: {text}", lang, f"o{i}"))
    return sorted(items, key=lambda item: item.created_at)


class Day:
    def __init__(self, services: Any):
        self.services = services
        self.waiting = monday()

    async def check(self, watch: Any, until: datetime) -> int:
        self.services.clock.moment = until
        due = [i for i in self.waiting if i.created_at < until]
        self.waiting = self.waiting[len(due):]
        if due:
            await self.services.pipeline.ingest(SOURCE, due)
        return await watch.check(until)


async def outbox(services: Any) -> list[OutboxAlert]:
    async with services.store.read() as session:
        return list(await session.scalars(select(OutboxAlert).order_by(OutboxAlert.id)))


async def test_a_competitors_negative_surge_goes_to_the_sales_sinks_only(
        db_url: str, clock: Any, enricher: Any) -> None:
    services = build_services(config(db_url), clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    day, watch = Day(services), spike_watch(services)

    assert await day.check(watch, at(10, 10)) == 0  # 10 so far; an empty usual level: 15
    assert await day.check(watch, at(10, 14)) == 0
    assert await day.check(watch, at(10, 15)) == 1  # 15: the rival's surge, to sales

    [row] = await outbox(services)
    started = at(10, 15).astimezone(UTC).isoformat()
    assert (row.sink, row.kind, row.mention_id) == ("sales", "competitor_spike", None)
    assert row.dedupe_key == f"competitor_spike:rival:{started}:sales"
    assert {k: row.payload[k] for k in ("kind", "brand", "count", "baseline", "window")} == {
        "kind": "competitor_spike", "brand": "rival", "count": 15, "baseline": 0,
        "window": "1h"}
    examples = row.payload["examples"]
    assert len(examples) == 3
    assert all(e["text"].startswith("Rival kargo: ") for e in examples)
    alert = Alert(row.id, row.sink, row.kind, row.dedupe_key, row.payload, at(10, 15))
    assert spike(alert, PLAIN).splitlines()[0] == \
        "Competitor spike · rival: 15 mentions in 1h (usually 0)"
    assert title([alert], at(10, 15)) == "Competitor spike · rival: 15 mentions"
    # Ours was never near a spike: the rival's mentions are not ours.
    assert services.metrics.registry.get_sample_value("listener_negative_mentions_window") == 6

    assert await day.check(watch, at(10, 30)) == 0  # 25 now: the same surge
    assert await day.check(watch, at(11, 20)) == 0  # over
    assert await day.check(watch, at(14, 15)) == 1  # ours: 15 + 6 usual, to ops only
    rows = await outbox(services)
    assert [(r.sink, r.kind) for r in rows] == [("sales", "competitor_spike"), ("ops", "spike")]
    assert "brand" not in rows[1].payload
    assert all(e["text"].startswith(("Acme: ", "Kargom", "Terrible", "Siparişim", "The app",
                                     "Disappointed", "Bu ne"))
               for e in rows[1].payload["examples"])
    async with services.store.read() as session:
        states = list(await session.scalars(select(SpikeState).order_by(SpikeState.id)))
    assert [(s.brand, s.ended_at is None, s.peak_count) for s in states] == [
        ("rival", False, 25), (None, True, 21)]

    await services.store.close()  # a restart: each spike is still remembered
    services = build_services(config(db_url), clock=clock, enricher=enricher)
    assert await spike_watch(services).check(at(14, 20)) == 0
    assert len(await outbox(services)) == 2
    await services.store.close()


async def test_without_the_option_a_competitors_surge_alerts_no_one(
        db_url: str, clock: Any, enricher: Any) -> None:
    services = build_services(config(db_url, competitors=False), clock=clock,
                              enricher=enricher)
    await prepare_database(services, migrate=True)
    day, watch = Day(services), spike_watch(services)
    for minute in (15, 25):
        assert await day.check(watch, at(10, minute)) == 0
    assert await outbox(services) == []
    async with services.store.read() as session:
        assert list(await session.scalars(select(SpikeState))) == []
    await services.store.close()


def test_a_slack_message_names_the_competitor_escaped() -> None:
    alert = Alert(1, "sales", "competitor_spike", "k", {
        "kind": "competitor_spike", "brand": "Rival & <Co>", "count": 3, "window": "1h",
        "baseline": 1, "examples": []}, MONDAY_10)
    assert spike(alert, MRKDWN) == \
        "*Competitor spike · Rival &amp; &lt;Co&gt;*: 3 mentions in 1h (usually 1)"
