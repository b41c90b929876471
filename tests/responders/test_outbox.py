"""The delivery worker against real local services and a real database (SQLite and
PostgreSQL): an outage or a 429 delays an alert, never loses or duplicates it; a refusal
is recorded with its reason; a burst becomes one message. Time is a FixedClock: each
`run_once(now)` is one round at that moment, nothing sleeps."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from listener.app import ALERT_OUTBOX, build_services, init_app
from listener.clock import FixedClock
from listener.metrics import Metrics
from listener.models import OutboxAlert
from listener.store import Store
from responders.alerts.base import Throttle
from responders.alerts.outbox import AlertOutbox, backoff
from responders.alerts.slack import SlackSink
from tests.conftest import make_config
from tests.responders.hooks import T0, payload, sink_config, write_alerts

SLACK_PATH = "/services/T000/B000/slack-secret-token"


async def rows(store: Store) -> list[OutboxAlert]:
    async with store.read() as session:
        return list(await session.scalars(select(OutboxAlert).order_by(OutboxAlert.id)))


def slack_outbox(store: Store, base_url: str, metrics: Metrics | None = None,
                 **keys: Any) -> AlertOutbox:
    config = sink_config({"kind": "slack", "name": "team-slack",
                          "webhook_url": base_url + SLACK_PATH, **keys})
    sink = SlackSink(config, throttle=Throttle(0))
    return AlertOutbox(store, {"team-slack": sink}, metrics or Metrics(), FixedClock(T0))


def sent_total(metrics: Metrics, outcome: str, kind: str = "breached") -> float:
    value = metrics.registry.get_sample_value(
        "listener_alerts_sent_total", {"sink": "team-slack", "kind": kind, "outcome": outcome})
    return value or 0.0


async def test_429_then_500_then_200_delivers_exactly_once_at_the_right_times(
        store: Store, start_hook: Any) -> None:
    hook, base = await start_hook((429, {"Retry-After": "1"}, "rate_limited"),
                                  (500, {}, "internal_error"))
    metrics = Metrics()
    outbox = slack_outbox(store, base, metrics)
    await write_alerts(store, "team-slack", [payload("breached")])

    assert await outbox.run_once(T0) == 0
    [row] = await rows(store)
    assert (row.state, row.attempts, row.sent_at) == ("pending", 1, None)
    assert row.next_attempt_at == T0 + timedelta(seconds=1)     # Retry-After: 1
    assert row.last_error == "HTTP 429: rate_limited"

    assert await outbox.run_once(T0 + timedelta(milliseconds=500)) == 0
    assert len(hook.received) == 1, "tried again before Retry-After"

    second_try = T0 + timedelta(seconds=1)
    assert await outbox.run_once(second_try) == 0
    [row] = await rows(store)
    assert (row.state, row.attempts) == ("pending", 2)
    assert row.next_attempt_at == second_try + timedelta(seconds=10)  # backoff after 2 tries
    assert row.last_error == "HTTP 500: internal_error"

    third_try = second_try + timedelta(seconds=10)
    assert await outbox.run_once(third_try) == 1
    assert await outbox.run_once(third_try + timedelta(minutes=30)) == 0
    [row] = await rows(store)
    assert (row.state, row.attempts, row.sent_at, row.last_error) == (
        "sent", 3, third_try, None)
    assert row.delivered_in is None                              # a message of its own
    assert len(hook.received) == 3 and [r.path for r in hook.received] == [SLACK_PATH] * 3
    assert [sent_total(metrics, o) for o in ("rate_limited", "retry", "sent")] == [1, 1, 1]
    assert metrics.registry.get_sample_value("listener_alert_outbox_pending") == 0
    await outbox.close()


async def test_a_refusal_fails_the_alert_with_its_reason_and_is_never_retried(
        store: Store, start_hook: Any) -> None:
    hook, base = await start_hook((400, {}, "invalid_blocks"))
    metrics = Metrics()
    outbox = slack_outbox(store, base, metrics)
    await write_alerts(store, "team-slack", [payload("breached")])

    assert await outbox.run_once(T0) == 0
    assert await outbox.run_once(T0 + timedelta(hours=1)) == 0
    [row] = await rows(store)
    assert (row.state, row.attempts, row.sent_at) == ("failed", 1, None)
    assert row.last_error == "HTTP 400: invalid_blocks"
    assert len(hook.received) == 1
    assert sent_total(metrics, "failed") == 1
    assert metrics.registry.get_sample_value("listener_alert_outbox_pending") == 0
    await outbox.close()


async def test_a_burst_of_300_alerts_is_one_message_and_every_row_is_recorded(
        store: Store, start_hook: Any) -> None:
    hook, base = await start_hook()
    outbox = slack_outbox(store, base)
    created = [T0 + timedelta(milliseconds=3 * n) for n in range(300)]
    await write_alerts(store, "team-slack",
                       [payload("breached" if n % 3 else "at_risk", id=n + 1,
                                text=f"complaint number {n + 1}") for n in range(300)],
                       created)

    assert await outbox.run_once(T0 + timedelta(seconds=1)) == 300
    [message] = hook.received
    body = message.json()
    assert body["text"] == "300 SLA alerts (200 breached, 100 at risk)"
    head, *listed, more = body["blocks"]
    assert "300 SLA alerts" in head["text"]["text"]
    assert len(listed) == 10
    assert all(f"complaint number {n}: " in block["text"]["text"] or
               f"complaint number {n} ·" in block["text"]["text"]
               for n, block in zip(range(1, 11), listed, strict=True))
    assert more["elements"][0]["text"] == "and 290 more"

    stored = await rows(store)
    assert {r.state for r in stored} == {"sent"} and len(stored) == 300
    assert {r.delivered_in for r in stored} == {stored[0].id}
    assert await outbox.run_once(T0 + timedelta(minutes=5)) == 0
    assert len(hook.received) == 1
    await outbox.close()


async def test_alerts_created_further_apart_than_the_window_are_separate_messages(
        store: Store, start_hook: Any) -> None:
    hook, base = await start_hook()
    outbox = slack_outbox(store, base, group_window="10s")
    await write_alerts(store, "team-slack", [payload(id=1), payload(id=2), payload(id=3)],
                       [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=11)])

    assert await outbox.run_once(T0 + timedelta(seconds=20)) == 3
    assert [m.json()["text"].split(":")[0] for m in hook.received] == [
        "2 SLA alerts (2 breached)", "SLA breached"]
    first, second, third = await rows(store)
    assert (first.delivered_in, second.delivered_in, third.delivered_in) == (
        first.id, first.id, None)
    await outbox.close()


async def test_after_an_outage_the_sinks_other_messages_wait_for_the_retry(
        store: Store, start_hook: Any) -> None:
    """Three messages due, the service is down: one try, not three."""
    hook, base = await start_hook((503, {}, "down"))
    outbox = slack_outbox(store, base, group_window="1s")
    await write_alerts(store, "team-slack", [payload(id=n) for n in range(3)],
                       [T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=10)])

    assert await outbox.run_once(T0 + timedelta(seconds=10)) == 0
    assert len(hook.received) == 1
    retry_at = T0 + timedelta(seconds=10) + backoff(1)
    assert await outbox.run_once(retry_at) == 3
    assert {r.state for r in await rows(store)} == {"sent"}
    await outbox.close()


def test_backoff_doubles_from_5s_up_to_10_minutes() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 10)] == [
        5, 10, 20, 40, 80, 160, 320, 600, 600]


async def test_the_loop_delivers_when_woken_and_flushes_on_close(
        store: Store, start_hook: Any) -> None:
    """The running worker: the engine's `wake` sends at once; alerts of a sink no longer
    configured are marked failed at start; close() flushes what is due."""
    hook, base = await start_hook()
    await write_alerts(store, "removed-sink", [payload(id=9)])
    outbox = slack_outbox(store, base)
    outbox.start()
    await write_alerts(store, "team-slack", [payload(id=1)])
    outbox.wake()
    await asyncio.wait_for(hook.arrived.wait(), 10)
    await write_alerts(store, "team-slack", [payload(id=2)])
    await outbox.close()

    gone, first, second = await rows(store)
    assert (gone.state, gone.last_error) == ("failed", "no alert sink of this name in the config")
    assert first.state == second.state == "sent"
    assert len(hook.received) == 2


async def test_the_served_app_runs_the_worker(aiohttp_client: Any, start_hook: Any,
                                             db_url: str, enricher: Any) -> None:
    """`init_app` with background work starts the worker (the SLA engine wakes it through
    `ALERT_OUTBOX`) and shutting down flushes it."""
    hook, base = await start_hook()
    config = make_config(db_url, alerts=[{"kind": "slack", "name": "team-slack",
                                          "webhook_url": base + SLACK_PATH}])
    services = build_services(config, clock=FixedClock(T0), enricher=enricher)
    client = await aiohttp_client(init_app(services, background=True))
    await write_alerts(services.store, "team-slack", [payload(id=1)])
    client.app[ALERT_OUTBOX].wake()
    await asyncio.wait_for(hook.arrived.wait(), 10)
    await write_alerts(services.store, "team-slack", [payload(id=2)])
    await client.close()
    assert len(hook.received) == 2


async def test_two_replicas_never_send_one_alert_twice(store: Store, start_hook: Any) -> None:
    """Two workers on one PostgreSQL database, claiming at the same moment. (SQLite runs
    one process, whose single worker serializes its rounds.)"""
    if store.dialect == "sqlite":
        pytest.skip("several replicas need PostgreSQL")
    hook, base = await start_hook()
    await write_alerts(store, "team-slack", [payload(id=n) for n in range(20)],
                       [T0 + timedelta(seconds=20 * n) for n in range(20)])
    one, two = slack_outbox(store, base), slack_outbox(store, base)
    sent = await asyncio.gather(one.run_once(T0 + timedelta(hours=1)),
                                two.run_once(T0 + timedelta(hours=1)))
    assert sum(sent) == 20 and len(hook.received) == 20
    assert {r.state for r in await rows(store)} == {"sent"}
    await one.close()
    await two.close()
