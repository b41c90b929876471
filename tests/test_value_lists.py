"""A batch's `IN (values)` look-ups find exactly the stored rows among the values,
whatever the values look like and however many there are (on SQLite they travel as one
JSON array, so a batch is never sliced under the bound-parameter limit)."""

from __future__ import annotations

from sqlalchemy import insert, select

from listener.models import Customer
from listener.store import Store
from listener.store.value_lists import one_of
from tests.conftest import MONDAY_10

EMAILS = ["ayşe@örnek.com.tr", "o'brien@example.com", 'say "hi"@example.com',
          "12345", "back\\slash@example.com", "İSTANBUL@example.com"]


async def test_values_of_every_shape_and_more_than_sqlites_parameter_limit(
        store: Store) -> None:
    async with store.write() as session:
        await session.execute(insert(Customer), [
            {"display_name": f"C {i}", "email": email, "created_at": MONDAY_10}
            for i, email in enumerate(EMAILS)])
    missing = [f"nobody{i}@example.com" for i in range(40_000)]
    wanted = sorted([*EMAILS[1:], "istanbul@example.com", *missing])
    async with store.read() as session:
        found = set(await session.scalars(select(Customer.email).where(
            one_of(Customer.email, wanted, store.dialect))))
        ids = sorted(await session.scalars(select(Customer.id)))
        by_id = set(await session.scalars(select(Customer.id).where(
            one_of(Customer.id, [ids[0], ids[-1], 10**12], store.dialect))))
        none = list(await session.scalars(select(Customer.id).where(
            one_of(Customer.id, [], store.dialect))))
    assert found == set(EMAILS[1:])  # exact matches only: no folding, no escaping lost
    assert by_id == {ids[0], ids[-1]}
    assert none == []
