"""Which earlier answered mention a new one follows up (next-response clocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import RawAuthor, RawItem
from listener.pipeline.ingest import Conversations, find_follow_up
from listener.store.ingest import AnsweredMention

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
ANSWERED = [
    AnsweredMention(1, customer_id=10, source="x", thread="conv-1",
                    first_response_at=T0),
    AnsweredMention(2, customer_id=20, source="x", thread="conv-2",
                    first_response_at=T0 + timedelta(hours=1)),
    AnsweredMention(3, customer_id=10, source="forum", thread="conv-1",
                    first_response_at=T0 + timedelta(hours=2)),
]


def item(at: datetime, thread: str | None = None) -> RawItem:
    return RawItem("new", "again?", at, "twitter", RawAuthor("someone"), thread=thread)


@pytest.mark.parametrize("new,source,customer,expected", [
    (item(T0 + timedelta(hours=3)), "x", 10, 3),  # same customer, latest answer wins
    (item(T0 + timedelta(minutes=30)), "x", 10, 1),  # answer 3 came after it
    (item(T0 + timedelta(days=3)), "x", 10, None),  # customer window passed
    (item(T0 + timedelta(days=3), thread="conv-2"), "x", 99, 2),  # same thread: any time
    (item(T0 + timedelta(days=3), thread="conv-2"), "forum", 99, None),  # thread elsewhere
    (item(T0 - timedelta(minutes=1), thread="conv-1"), "x", 10, None),  # before any answer
    (item(T0 + timedelta(hours=3)), "x", 30, None),  # a stranger
])
def test_follow_ups(new: RawItem, source: str, customer: int, expected: int | None) -> None:
    assert find_follow_up(new, source, customer, Conversations.answered(ANSWERED),
                          DAY) == expected
