"""`Conversations` built from a batch's records at once (appended, each list sorted once)
answers exactly as one built by adding the same records one at a time: equal times
included, where the first added must win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from connectors.base import RawAuthor, RawItem
from listener.pipeline.ingest import Conversations
from listener.store.routing import ConversationOwner

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
at = st.integers(0, 6).map(lambda hours: T0 + timedelta(hours=hours))  # many ties
owners = st.builds(ConversationOwner, customer_id=st.sampled_from((None, 1, 2)),
                   source=st.sampled_from(("x", "y")), thread=st.sampled_from((None, "", "t")),
                   created_at=at, assignee=st.sampled_from(("a", "b", "c", "d")))
asks = st.tuples(at, st.sampled_from((None, "t")), st.sampled_from(("x", "y")),
                 st.sampled_from((None, 1, 2, 3)), st.integers(0, 4))


@given(st.lists(owners, max_size=12), st.lists(owners, max_size=3), st.lists(asks, max_size=8))
def test_built_at_once_is_added_one_by_one(records, later, questions):
    at_once = Conversations.owners(records)
    one_by_one = Conversations.owners([])
    for record in records:
        one_by_one.add(record)
    for record in later:  # the batch's own decisions, added as the loop makes them
        at_once.add(record)
        one_by_one.add(record)
    for moment, thread, source, customer, hours in questions:
        item = RawItem("n", "?", moment, "twitter", RawAuthor("someone"), thread=thread)
        window = timedelta(hours=hours)
        assert at_once.latest(item, source, customer, window) is \
            one_by_one.latest(item, source, customer, window)
