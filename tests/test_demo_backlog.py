"""The demo as a new user meets it: `config.example.yaml` started at 06:00 on a Monday.

Only the on-call agent works at that hour, so most of the replayed morning waits
unassigned. When the 09:00 shift starts the backlog must drain at once (the boundary
job fires a second after 09:00), most urgent deadline first, with nobody over max_open
and nothing left that someone on shift could have taken."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from listener.app import build_services, prepare_database
from listener.backlog import BOUNDARY_SLACK, Backlog
from listener.clock import FixedClock
from listener.config import load_config
from listener.jobs import Jobs
from listener.models import OPEN_STATUSES, Customer, Mention, MentionEvent
from listener.router import RoutingFacts, why_not_eligible
from listener.store.queries import open_counts
from tests.conftest import IST

ROOT = Path(__file__).resolve().parents[1]
MONDAY_06 = datetime(2026, 11, 23, 6, 0, tzinfo=IST)
RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def example_config(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Loaded as `listener serve --config config.example.yaml` would, from the checkout."""
    monkeypatch.setenv("LISTENER_DATABASE_URL", db_url)
    monkeypatch.chdir(ROOT)
    return load_config(ROOT / "config.example.yaml")


async def poll_demo(services: Any) -> None:
    services.coordinator.sources["demo"].not_before = None
    assert await services.coordinator.poll("demo") == "ok"


async def waiting(services: Any) -> list[tuple[Mention, str | None]]:
    async with services.store.read() as session:
        rows = await session.execute(
            select(Mention, Customer.segment)
            .outerjoin(Customer, Customer.id == Mention.customer_id)
            .where(Mention.status.in_(OPEN_STATUSES), Mention.assignee.is_(None)))
        return [(m, segment) for m, segment in rows.all()]


async def loads(services: Any) -> dict[str, int]:
    async with services.store.read() as session:
        return await open_counts(session)


def urgency(mention: Mention) -> tuple[Any, ...]:
    """The drain's order: deadline (none last), then priority, then arrival."""
    return (mention.deadline_at is None, mention.deadline_at, RANK[mention.priority],
            mention.id)


async def test_the_demo_backlog_drains_when_the_morning_shift_starts(
        db_url: str, enricher: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FixedClock(MONDAY_06)
    config = example_config(db_url, monkeypatch)
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    max_open = {a.id: a.max_open for a in config.agents}

    await poll_demo(services)  # 06:00: the first 40 minutes of the morning at once
    clock.advance(timedelta(hours=1))
    await poll_demo(services)  # 07:00: the rest of the file has played
    before = await waiting(services)
    assert len(before) > 100
    assert await loads(services) == {"nobetci": max_open["nobetci"]}  # on call, full

    backlog = Backlog(services.store, services.pipeline.routing, clock)
    jobs = Jobs()  # not started: only what start() schedules is looked at
    backlog.start(jobs)
    shift_start = datetime(2026, 11, 23, 9, 0, tzinfo=IST)
    boundary = jobs.scheduler.get_job("backlog-shift")
    assert boundary.trigger.run_date == shift_start + BOUNDARY_SLACK  # seconds, not a poll
    assert await backlog.sweep(clock.now()) == 0  # 07:00: still nobody with room

    clock.moment = shift_start + BOUNDARY_SLACK
    assigned = await backlog.shift_tick(clock.now())
    after = await waiting(services)
    assert assigned == len(before) - len(after) and assigned > 100

    now_loads = await loads(services)
    assert all(now_loads[agent] <= max_open[agent] for agent in now_loads), now_loads
    async with services.store.read() as session:
        drained = (await session.execute(
            select(Mention).join(MentionEvent, MentionEvent.mention_id == Mention.id)
            .where(MentionEvent.kind == "assigned",
                   MentionEvent.at == shift_start + BOUNDARY_SLACK)
            .order_by(MentionEvent.id))).scalars().all()
    assert len(drained) == assigned
    assert [urgency(m) for m in drained] == sorted(urgency(m) for m in drained)

    routing = services.pipeline.routing
    for mention, segment in after:  # left over only where nobody on shift could take it
        facts = RoutingFacts(mention.channel, mention.lang, mention.source, segment,
                             mention.priority)
        reasons = [why_not_eligible(a, facts, now_loads.get(a.id, 0), clock.now())
                   for a in routing.agents]
        assert all(reasons), (mention.text[:60], reasons)
    await services.store.close()
    await services.coordinator.close()
