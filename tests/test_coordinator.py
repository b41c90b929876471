"""Polling end to end: connector → coordinator → pipeline → database, on both backends."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from connectors.base import Batch, RateLimited, RawAuthor, RawItem, SourceError
from listener.app import build_services, prepare_database
from listener.models import Mention, RejectedItem, SourceState
from tests.conftest import IST, make_config


class ScriptedConnector:
    """A fake upstream for coordinator behaviour only; HTTP connectors get real servers."""

    kind: ClassVar[str] = "replay"
    polled: ClassVar[bool] = True

    def __init__(self, items: list[RawItem]):
        self.items = items
        self.calls: list[str | None] = []
        self.fail_with: Exception | None = None

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        self.calls.append(cursor)
        if self.fail_with is not None:
            raise self.fail_with
        start = int(cursor or 0)
        return Batch(items=self.items[start:], cursor=str(len(self.items)))

    async def close(self) -> None:
        pass


def item(n: int, created_at: datetime, channel: str = "twitter", handle: str = "ali",
         in_reply_to: str | None = None, text: str = "Kargom nerede? Hâlâ gelmedi!") -> RawItem:
    return RawItem(external_id=str(n), text=text, created_at=created_at, channel=channel,
                   author=RawAuthor(handle, handle.title()), in_reply_to=in_reply_to,
                   url=f"https://x.com/{handle}/status/{n}")


def replay_source(path: Path, **extra: Any) -> dict[str, Any]:
    return {"id": "demo", "kind": "replay", "path": str(path), "interval": "5s", **extra}


async def setup(db_url: str, clock: Any, enricher: Any, connector: Any = None,
                **source: Any) -> Any:
    config = make_config(db_url, sources=[replay_source(Path("unused.jsonl"), **source)])
    services = build_services(config, clock=clock, enricher=enricher)
    if connector is not None:
        services.coordinator.sources["demo"].connector = connector
    await prepare_database(services, migrate=True)
    return services


async def count(services: Any, model: Any = Mention) -> int:
    async with services.store.read() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_crash_between_fetch_and_commit_refetches_and_stores_once(
        db_url: str, clock: Any, enricher: Any) -> None:
    connector = ScriptedConnector([item(i, clock.now() - timedelta(minutes=i)) for i in range(5)])
    services = await setup(db_url, clock, enricher, connector)

    def crash() -> None:
        raise RuntimeError("power cut before commit")

    services.pipeline.before_commit = crash
    assert await services.coordinator.poll("demo") == "error"
    assert await count(services) == 0
    services.pipeline.before_commit = None
    services.coordinator.sources["demo"].not_before = None
    assert await services.coordinator.poll("demo") == "ok"
    assert connector.calls == [None, None]  # the cursor never advanced past the crash
    assert await count(services) == 5
    assert await services.coordinator.poll("demo") == "ok"
    assert connector.calls[-1] == "5"
    assert await count(services) == 5
    await services.store.close()


async def test_duplicates_are_ignored_across_restarts(db_url: str, clock: Any,
                                                      enricher: Any) -> None:
    items = [item(i, clock.now()) for i in range(3)]
    for _ in range(2):
        services = await setup(db_url, clock, enricher, ScriptedConnector(items))
        await services.coordinator.poll("demo")
        await services.store.close()
    services = await setup(db_url, clock, enricher)
    result = await services.pipeline.ingest(services.coordinator.sources["demo"].config,
                                            items)
    assert result.stored == [] and result.duplicates == 3
    assert await count(services) == 3
    await services.store.close()


async def test_first_poll_does_not_queue_history_older_than_backfill(
        db_url: str, clock: Any, enricher: Any) -> None:
    now = clock.now()
    connector = ScriptedConnector([item(1, now - timedelta(days=30)), item(2, now)])
    services = await setup(db_url, clock, enricher, connector, backfill="1d")
    await services.coordinator.poll("demo")
    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
    assert rows["1"].status == "ignored" and rows["1"].deadline_at is None
    assert rows["2"].status == "assigned" and rows["2"].deadline_at is not None
    await services.store.close()


async def test_brand_reply_in_thread_stops_the_customers_clock(db_url: str, clock: Any,
                                                                enricher: Any) -> None:
    posted = clock.now() - timedelta(minutes=30)
    connector = ScriptedConnector([
        item(1, posted),
        item(2, clock.now(), handle="ACME", in_reply_to="1", text="Hemen bakıyoruz, DM lütfen"),
    ])
    services = await setup(db_url, clock, enricher, connector)
    await services.coordinator.poll("demo")
    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
    assert rows["1"].status == "responded"
    assert rows["1"].first_response_at == clock.now()
    assert rows["2"].status == "ignored" and rows["2"].assignee is None
    await services.store.close()


async def test_rate_limit_and_errors_back_off_and_are_recorded(db_url: str, clock: Any,
                                                               enricher: Any) -> None:
    connector = ScriptedConnector([item(1, clock.now())])
    services = await setup(db_url, clock, enricher, connector)
    connector.fail_with = RateLimited("429 from upstream", retry_after=120)
    assert await services.coordinator.poll("demo") == "rate_limited"
    connector.fail_with = None
    assert await services.coordinator.poll("demo") == "skipped"  # still inside Retry-After
    clock.advance(timedelta(seconds=121))
    assert await services.coordinator.poll("demo") == "ok"
    connector.fail_with = SourceError("502 Bad Gateway")
    assert await services.coordinator.poll("demo") == "error"
    async with services.store.read() as session:
        state = await session.get(SourceState, "demo")
    assert state.consecutive_failures == 1 and "502" in state.last_error
    metrics = services.metrics.registry
    assert metrics.get_sample_value("listener_source_polls_total",
                                    {"source": "demo", "outcome": "rate_limited"}) == 1
    assert metrics.get_sample_value("listener_source_polls_total",
                                    {"source": "demo", "outcome": "ok"}) == 1
    await services.store.close()


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
                    encoding="utf-8")
    return path


def webhook_line(n: int, minute: int) -> dict[str, Any]:
    return {"id": f"r-{n}", "text": f"Where is order {n}?", "channel": "twitter",
            "created_at": datetime(2026, 1, 5, 9, minute, tzinfo=IST).isoformat(),
            "author": {"handle": f"u{n}", "name": f"User {n}"}}


async def test_replay_plays_the_file_as_if_live_and_records_bad_lines(
        db_url: str, clock: Any, enricher: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [
        webhook_line(1, 0), "{not json", webhook_line(2, 10), webhook_line(3, 30)])
    config = make_config(db_url, sources=[replay_source(path, speed=10)])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    start = clock.now()
    await services.coordinator.poll("demo")
    assert await count(services) == 1  # line 1 is "now"; the next is 10 min / 10 = 1 min away
    assert await count(services, RejectedItem) == 1
    clock.advance(timedelta(minutes=1))
    await services.coordinator.poll("demo")
    clock.advance(timedelta(minutes=2))
    await services.coordinator.poll("demo")
    async with services.store.read() as session:
        created = sorted(m.created_at for m in await session.scalars(select(Mention)))
    assert created == [start, start + timedelta(minutes=1), start + timedelta(minutes=3)]
    await services.store.close()


@pytest.mark.parametrize("moment,expected", [
    (datetime(2026, 11, 23, 10, 0, tzinfo=IST), {"ayse", "john"}),  # Monday, on shift
    (datetime(2026, 11, 22, 11, 0, tzinfo=IST), {None}),  # Sunday: nobody on shift
])
async def test_routing_only_gives_mentions_to_agents_on_shift_with_the_channel(
        db_url: str, clock: Any, enricher: Any, moment: datetime, expected: set[Any]) -> None:
    clock.moment = moment
    items = [item(i, moment, channel=channel, handle=f"h{i}", text="Where is my refund?")
             for i, channel in enumerate(["twitter", "twitter", "web", "mastodon", "reddit"])]
    services = await setup(db_url, clock, enricher, ScriptedConnector(items))
    await services.coordinator.poll("demo")
    agents = {a.id: a for a in services.pipeline.routing.agents}
    async with services.store.read() as session:
        rows = list(await session.scalars(select(Mention)))
    assert {m.assignee for m in rows if m.channel != "reddit"} == expected
    for mention in rows:
        if mention.assignee:
            assert mention.channel in agents[mention.assignee].channels
            assert agents[mention.assignee].shift.covers(moment)
        else:
            assert mention.status == "new"
    assert next(m for m in rows if m.channel == "reddit").assignee is None
    await services.store.close()


async def test_replay_lead_starts_the_file_in_the_past(db_url: str, clock: Any, enricher: Any,
                                                       tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [webhook_line(1, 0), webhook_line(2, 20),
                                              webhook_line(3, 50)])
    config = make_config(db_url, sources=[replay_source(path, speed=2, lead="15m")])
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    await services.coordinator.poll("demo")
    async with services.store.read() as session:
        created = sorted(m.created_at for m in await session.scalars(select(Mention)))
    now = clock.now()
    assert created == [now - timedelta(minutes=15), now - timedelta(minutes=5)]
    await services.store.close()


async def test_errors_back_off_exponentially_up_to_an_hour(db_url: str, clock: Any,
                                                           enricher: Any) -> None:
    connector = ScriptedConnector([item(1, clock.now())])
    services = await setup(db_url, clock, enricher, connector, interval="5m")
    connector.fail_with = SourceError("HTTP 503 from upstream")
    polled = services.coordinator.sources["demo"]
    waits = []
    for _ in range(6):
        clock.moment = polled.not_before or clock.now()
        assert await services.coordinator.poll("demo") == "error"
        waits.append((polled.not_before - clock.now()).total_seconds() / 60)
        assert polled.next_poll_at == polled.not_before
    assert waits == [5, 10, 20, 40, 60, 60]
    clock.moment = polled.not_before
    connector.fail_with = None
    assert await services.coordinator.poll("demo") == "ok"
    assert polled.failures == 0 and polled.last_items == 1
    assert timedelta(minutes=5) <= polled.next_poll_at - clock.now() <= timedelta(minutes=5.5)
    await services.store.close()


async def test_a_used_up_rate_window_delays_the_next_poll_even_after_success(
        db_url: str, clock: Any, enricher: Any) -> None:
    reset = clock.now() + timedelta(minutes=7)

    class ExhaustedWindow(ScriptedConnector):
        async def fetch(self, cursor: str | None, now: datetime) -> Batch:
            batch = await super().fetch(cursor, now)
            batch.not_before = reset
            return batch

    services = await setup(db_url, clock, enricher, ExhaustedWindow([item(1, clock.now())]),
                           interval="1m")
    assert await services.coordinator.poll("demo") == "ok"
    assert services.coordinator.sources["demo"].next_poll_at == reset
    clock.advance(timedelta(minutes=2))
    assert await services.coordinator.poll("demo") == "skipped"
    clock.moment = reset
    assert await services.coordinator.poll("demo") == "ok"
    await services.store.close()


async def test_a_brand_post_in_a_thread_answers_the_earlier_open_posts_of_that_thread(
        db_url: str, clock: Any, enricher: Any) -> None:
    """Forums have topics, not reply ids: the brand posting in the topic answers it."""
    now = clock.now()
    thread_items = [
        replace(item(1, now - timedelta(minutes=50), handle="ali"), thread="topic-9"),
        replace(item(2, now - timedelta(minutes=40), handle="veli"), thread="topic-9"),
        replace(item(3, now - timedelta(minutes=30), handle="can"), thread="topic-7"),
        replace(item(4, now - timedelta(minutes=20), handle="acme", text="Merhaba, DM"),
                thread="topic-9"),
        replace(item(5, now - timedelta(minutes=10), handle="ali"), thread="topic-9"),
    ]
    services = await setup(db_url, clock, enricher, ScriptedConnector(thread_items))
    await services.coordinator.poll("demo")
    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
    assert {k: rows[k].status for k in "12345"} == {
        "1": "responded", "2": "responded", "3": "assigned", "4": "ignored", "5": "assigned"}
    assert rows["1"].first_response_at == now - timedelta(minutes=20)
    assert rows["1"].response_external_id == "4"
    assert services.metrics.registry.get_sample_value(
        "listener_sla_met_total", {"channel": "twitter", "policy": "social-same-day"}) == 2
    await services.store.close()


async def test_a_post_the_connector_knows_is_the_brands_answers_without_brand_accounts(
        db_url: str, clock: Any, enricher: Any) -> None:
    """Read from the brand account's own timeline: `by_brand`, whatever the handle."""
    now = clock.now()
    connector = ScriptedConnector([
        item(1, now - timedelta(minutes=30), handle="ali"),
        replace(item(2, now - timedelta(minutes=5), handle="acme_destek", in_reply_to="1",
                     text="Merhaba Ali, kargonuz yolda"), by_brand=True),
    ])
    services = await setup(db_url, clock, enricher, connector)
    await services.coordinator.poll("demo")
    async with services.store.read() as session:
        rows = {m.external_id: m for m in await session.scalars(select(Mention))}
    assert rows["1"].status == "responded"
    assert rows["1"].first_response_at == now - timedelta(minutes=5)
    assert rows["2"].status == "ignored" and rows["2"].deadline_at is None
    await services.store.close()


async def test_the_database_going_away_mid_poll_is_no_traceback_and_refetches(
        db_url: str, clock: Any, enricher: Any, caplog: Any) -> None:
    """A poll whose commit meets a lost database connection (the database restarting) is
    a failed poll with a back-off, not an "unexpected failure" with a traceback; the next
    poll fetches the same items again and stores them once."""
    connector = ScriptedConnector([item(i, clock.now() - timedelta(minutes=i)) for i in range(3)])
    services = await setup(db_url, clock, enricher, connector)

    def connection_lost() -> None:
        raise OperationalError("COMMIT", {}, ConnectionResetError("connection reset by peer"))

    services.pipeline.before_commit = connection_lost
    with caplog.at_level(logging.INFO):
        assert await services.coordinator.poll("demo") == "error"
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "unexpected failure" not in caplog.text
    assert services.coordinator.sources["demo"].not_before is not None  # backs off
    services.pipeline.before_commit = None
    services.coordinator.sources["demo"].not_before = None
    assert await services.coordinator.poll("demo") == "ok"
    assert connector.calls == [None, None]
    assert await count(services) == 3
    await services.store.close()
