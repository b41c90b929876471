"""The SLA engine fires each alert moment once, at its moment, into the outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from connectors.base import RawAuthor, RawItem
from listener.app import build_services, prepare_database
from listener.clock import SystemClock
from listener.models import Mention, MentionEvent, OutboxAlert
from listener.pipeline.ingest import SourceInfo
from tests.conftest import make_config

EVERY_DAY = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
SOURCE = SourceInfo("site-form", "webhook")


def engine_config(db_url: str, **policy: Any) -> Any:
    return make_config(
        db_url,
        calendar={"hours": EVERY_DAY},
        agents=[{"id": "ayse", "channels": ["web"], "max_open": 100000, "slack": "@ayse"}],
        sla={"policies": [{"name": "fast", "first_response": "10m", "at_risk": ["5m", "2m"],
                           "escalate_after": "5m", "escalate_to": ["ayse"], **policy}]},
        alerts=[{"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/hook",
                 "secret": "s", "on": ["at_risk", "breached", "escalated"]},
                {"kind": "webhook", "name": "leads", "url": "http://127.0.0.1:9/hook",
                 "secret": "s", "on": ["breached"]}],
        server={"api_tokens": ["t"], "public_url": "https://listener.example.com/"},
    )


def mention(n: int, at: datetime, text: str = "Kargom <b>nerede</b>?") -> RawItem:
    return RawItem(external_id=f"m-{n}", text=text, created_at=at, channel="web",
                   author=RawAuthor(f"user{n}", f"User {n}"), url=f"https://acme.example/{n}")


async def outbox(services: Any) -> list[OutboxAlert]:
    async with services.store.read() as session:
        return list(await session.scalars(select(OutboxAlert).order_by(OutboxAlert.id)))


async def test_each_moment_fires_once_at_its_time_and_never_after_an_answer(
        db_url: str, clock: Any, enricher: Any) -> None:
    services = build_services(engine_config(db_url), clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    start = clock.now()
    result = await services.pipeline.ingest(SOURCE, [mention(1, start), mention(2, start)])
    answered = result.stored[1]
    engine = services.engine

    assert await engine.fire_due(start + timedelta(minutes=4, seconds=59)) == 0
    assert await engine.fire_due(start + timedelta(minutes=5)) == 2  # at_risk 0, both
    async with services.store.write() as session:
        from listener.store.actions import mark_responded
        await mark_responded(session, answered, actor="ayse", now=clock.now())
    assert await engine.fire_due(start + timedelta(minutes=5)) == 0  # not twice
    assert await engine.fire_due(start + timedelta(minutes=8)) == 1  # at_risk 1: one left
    assert await engine.fire_due(start + timedelta(minutes=10)) == 2  # breach: ops + leads
    assert await engine.fire_due(start + timedelta(minutes=15)) == 1  # escalation: ops
    assert await engine.fire_due(start + timedelta(hours=5)) == 0

    rows = await outbox(services)
    assert [(r.mention_id, r.kind, r.sink) for r in rows] == [
        (1, "at_risk", "ops"), (2, "at_risk", "ops"), (1, "at_risk", "ops"),
        (1, "breached", "ops"), (1, "breached", "leads"), (1, "escalated", "ops")]
    assert len({r.dedupe_key for r in rows}) == len(rows)
    payload = rows[-1].payload
    assert payload["kind"] == "escalated"
    assert payload["mention"] | {
        "id": 1, "channel": "web", "assignee": "ayse", "assignee_slack": "@ayse",
        "policy": "fast", "text": "Kargom <b>nerede</b>?", "escalate_to": ["@ayse"],
        "dashboard_url": "https://listener.example.com/mentions/1",
        "author": {"handle": "user1", "name": "User 1"}} == payload["mention"]
    assert services.metrics.registry.get_sample_value(
        "listener_sla_breaches_total", {"channel": "web", "policy": "fast"}) == 1
    async with services.store.read() as session:
        kinds = list(await session.scalars(
            select(MentionEvent.kind).where(MentionEvent.mention_id == 1,
                                            MentionEvent.actor == "sla")))
    assert kinds == ["at_risk", "at_risk", "breached", "escalated"]
    await services.store.close()


async def test_a_restart_long_after_the_moments_alerts_the_latest_state_once(
        db_url: str, clock: Any, enricher: Any) -> None:
    """Warnings that passed while nobody was running are not sent after the breach."""
    config = engine_config(db_url)
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    start = clock.now()
    await services.pipeline.ingest(SOURCE, [mention(n, start) for n in range(3)])
    await services.store.close()

    later = start + timedelta(minutes=11)
    for _ in range(2):  # two restarts in a row: the second finds nothing new
        services = build_services(config, clock=clock, enricher=enricher)
        await prepare_database(services, migrate=True)
        await services.engine.fire_due(later)
        await services.store.close()
    services = build_services(config, clock=clock, enricher=enricher)
    rows = await outbox(services)
    assert sorted((r.mention_id, r.kind, r.sink) for r in rows) == sorted(
        (m, "breached", sink) for m in (1, 2, 3) for sink in ("ops", "leads"))
    await services.store.close()


async def test_three_hundred_breaches_in_one_second_are_all_accounted_for(
        db_url: str, clock: Any, enricher: Any) -> None:
    services = build_services(engine_config(db_url, at_risk=None, escalate_after=None,
                                            escalate_to=[]),
                              clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    start = clock.now()
    await services.pipeline.ingest(SOURCE, [mention(n, start) for n in range(300)])
    assert await services.engine.fire_due(start + timedelta(minutes=10)) == 600
    rows = await outbox(services)
    assert {r.mention_id for r in rows if r.sink == "leads"} == set(range(1, 301))
    async with services.store.read() as session:
        armed = await session.scalar(
            select(func.count()).select_from(Mention).where(Mention.next_alert_at.is_not(None)))
    assert armed == 0
    await services.store.close()


async def test_alerts_come_within_a_second_of_their_moment_and_never_before(
        db_url: str, enricher: Any) -> None:
    """Real clock, real timer: the engine is woken by the pipeline and sleeps to the moment."""
    config = engine_config(db_url, first_response="3s", at_risk=["2s"], escalate_after=None,
                           escalate_to=[])
    services = build_services(config, clock=SystemClock(), enricher=enricher)
    await prepare_database(services, migrate=True)
    task = asyncio.create_task(services.engine.run())
    try:
        await asyncio.sleep(0.3)  # the engine is asleep with nothing armed
        now = datetime.now(UTC)
        await services.pipeline.ingest(SOURCE, [mention(1, now), mention(2, now)])
        for _ in range(100):
            if len(await outbox(services)) >= 6:
                break
            await asyncio.sleep(0.1)
    finally:
        services.engine.stop()
        await task
    rows = await outbox(services)
    assert sorted((r.mention_id, r.kind, r.sink) for r in rows) == sorted(
        [(m, "at_risk", "ops") for m in (1, 2)] + [(m, "breached", s) for m in (1, 2)
                                                   for s in ("ops", "leads")])
    for row in rows:
        lateness = (row.created_at - datetime.fromisoformat(row.payload["moment_at"]))
        assert timedelta(0) <= lateness < timedelta(seconds=1), (row.kind, lateness)
    await services.store.close()


async def test_a_follow_up_after_an_answer_runs_on_a_new_next_response_clock(
        db_url: str, clock: Any, enricher: Any) -> None:
    services = build_services(engine_config(db_url, next_response="30m", at_risk=None),
                              clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    start = clock.now()
    [first] = (await services.pipeline.ingest(SOURCE, [mention(1, start)])).stored
    async with services.store.write() as session:
        from listener.store.actions import mark_responded
        await mark_responded(session, first, actor="ayse", now=start + timedelta(minutes=3))
    again = replace_author(mention(2, start + timedelta(hours=2), "Hâlâ gelmedi!"), "user1")
    stranger = mention(3, start + timedelta(hours=2))
    late = replace_author(mention(4, start + timedelta(days=2)), "user1")
    await services.pipeline.ingest(SOURCE, [again, stranger, late])
    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
    assert rows["m-2"].follow_up_of == first
    assert rows["m-2"].deadline_at == again.created_at + timedelta(minutes=30)
    assert rows["m-2"].status == "assigned"
    assert rows["m-3"].follow_up_of is None  # another customer
    assert rows["m-3"].deadline_at == stranger.created_at + timedelta(minutes=10)
    assert rows["m-4"].follow_up_of is None  # outside next_response_window (24h)
    assert rows["m-1"].status == "responded"  # the history keeps both
    await services.store.close()


def replace_author(item: RawItem, handle: str) -> RawItem:
    from dataclasses import replace
    return replace(item, author=RawAuthor(handle, "User 1"))


async def test_a_late_answer_counts_as_missed_and_buckets_match_the_policy(
        db_url: str, clock: Any, enricher: Any) -> None:
    services = build_services(engine_config(db_url), clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    start = clock.now()
    [late, quick] = (await services.pipeline.ingest(
        SOURCE, [mention(1, start), mention(2, start)])).stored
    from listener.store.actions import mark_responded
    async with services.store.write() as session:
        await mark_responded(session, quick, actor="ayse", now=start + timedelta(minutes=4))
    await services.engine.fire_due(start + timedelta(minutes=10))
    async with services.store.write() as session:
        await mark_responded(session, late, actor="ayse", now=start + timedelta(minutes=12))
    for at in (4, 12):  # what the API records when each is marked responded
        services.metrics.observe_first_response("web", "fast", start,
                                                start + timedelta(minutes=at),
                                                start + timedelta(minutes=10))
    registry = services.metrics.registry
    labels = {"channel": "web", "policy": "fast"}
    assert registry.get_sample_value("listener_sla_missed_total", labels) == 1
    assert registry.get_sample_value("listener_sla_met_total", labels) == 1
    assert registry.get_sample_value("listener_sla_breaches_total", labels) == 1
    assert registry.get_sample_value("listener_first_response_seconds_bucket",
                                     {**labels, "le": "600.0"}) == 1
    await services.store.close()
