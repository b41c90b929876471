"""Which due alerts share a message: pure, so tested without a server."""

from __future__ import annotations

from datetime import timedelta

from responders.alerts.base import Alert
from responders.alerts.grouping import by_sink, group_alerts
from tests.responders.hooks import T0


def alert(id: int, seconds: float, sink: str = "slack-0") -> Alert:
    return Alert(id, sink, "breached", f"k{id}", {}, T0 + timedelta(seconds=seconds))


def ids(groups: list[list[Alert]]) -> list[list[int]]:
    return [[a.id for a in group] for group in groups]


def test_a_message_holds_what_was_created_within_the_window_of_its_first_alert() -> None:
    alerts = [alert(4, 25), alert(1, 0), alert(2, 9.5), alert(3, 10.5), alert(5, 20.5)]
    assert ids(group_alerts(alerts, timedelta(seconds=10))) == [[1, 2], [3, 5], [4]]
    assert ids(group_alerts(alerts, timedelta(0))) == [[1], [2], [3], [5], [4]]


def test_a_steady_trickle_does_not_grow_one_message_forever() -> None:
    trickle = [alert(n, 5 * n) for n in range(10)]
    assert ids(group_alerts(trickle, timedelta(seconds=10))) == [
        [0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_a_sink_that_caps_its_messages_gets_several() -> None:
    burst = [alert(n, 0) for n in range(250)]
    assert [len(g) for g in group_alerts(burst, timedelta(seconds=10), max_size=100)] == [
        100, 100, 50]


def test_alerts_are_split_by_sink() -> None:
    split = by_sink([alert(1, 0, "b"), alert(2, 0, "a"), alert(3, 1, "b")])
    assert {sink: [a.id for a in alerts] for sink, alerts in split.items()} == {
        "a": [2], "b": [1, 3]}
