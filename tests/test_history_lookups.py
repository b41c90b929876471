"""An ingest batch's look-ups read only the recent part of its customers' and authors'
histories (EXPLAIN of the statements as the app sends them: one index range from
`since`), find the last assignee without walking the unassigned mentions, and answer
exactly what a computation over every row answers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from listener.models import Author, Customer, Mention
from listener.store import Store
from listener.store.ingest import AnsweredMention, AuthorLink, IngestTx
from listener.store.routing import ConversationOwner, last_assigned, owners_of
from tests.conftest import MONDAY_10
from tests.test_read_scale import Statements

STORED, PEOPLE = 1500, 20
SINCE = MONDAY_10 - timedelta(hours=48)  # one mention was posted at exactly this moment
CUSTOMERS, AUTHORS, THREADS = {1, 2, 3, 13}, {2, 5, 13}, {"t-3", "t-40"}  # 13: at SINCE


def customer_of(author: int) -> int:
    return 5 if author == PEOPLE else author  # customer 5 writes as two authors


# The batch's authors with their customers: author 20's texts are read with customer 5's
# and must be left out.
LINKS = [AuthorLink(author, customer_of(author), None) for author in AUTHORS]


def history_rows() -> list[dict[str, Any]]:
    """Two months of mentions, one an hour: a few people and threads each, about a
    quarter of them answered (some long after they were posted), a third unassigned."""
    rows = []
    for i in range(1, STORED + 1):
        created = MONDAY_10 - timedelta(hours=STORED - i)
        answered = created + timedelta(hours=i % 60) if i % 4 == 0 else None
        rows.append({
            "id": i, "source": f"src-{i % 3}", "channel": "twitter", "external_id": f"e-{i}",
            "author_id": 1 + i % PEOPLE if i % 9 else None,
            "customer_id": customer_of(1 + i % PEOPLE) if i % 9 else None,
            "text": f"kargo #{i % 5}",
            "created_at": created, "ingested_at": created, "thread": f"t-{i % 50}",
            "status": "responded" if answered else "new", "first_response_at": answered,
            "assignee": ("ayse", "john", None)[i % 3], "priority": "normal"})
    return rows


@pytest.fixture
async def history(store: Store) -> Store:
    async with store.write() as session:
        await session.execute(insert(Customer), [
            {"id": i, "display_name": f"C {i}", "created_at": MONDAY_10}
            for i in range(1, PEOPLE + 1)])
        await session.execute(insert(Author), [
            {"id": i, "channel": "twitter", "handle": f"user{i}", "name": f"User {i}",
             "customer_id": customer_of(i)} for i in range(1, PEOPLE + 1)])
        await session.execute(insert(Mention), history_rows())
    if store.dialect == "postgresql":
        async with store.engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")  # as autovacuum would
    return store


# The index, the equality on its first column and the time range on its second, in
# SQLite's EXPLAIN QUERY PLAN or PostgreSQL's EXPLAIN (Index Cond on the next line).
def one_range(index: str, column: str, time: str) -> str:
    return (rf"SEARCH mentions USING (COVERING )?INDEX {index} \({column}=\? AND {time}>\?\)|"
            rf"(Bitmap Index Scan on|Index (Only )?Scan using) {index}\b.*\n\s*Index Cond: "
            rf"\(\({column} = ANY .*\) AND \({time} >= ")


async def plans(store: Store, statements: Statements) -> list[str]:
    return [await statements.plan(sql, params) for sql, params in statements.take()]


async def test_owners_answered_and_recent_texts_read_one_index_range_from_since(
        history: Store) -> None:
    statements = Statements(history.engine)
    async with history.write() as session:
        tx = IngestTx(session)
        await tx.conversation_owners(CUSTOMERS, "src-1", THREADS, SINCE)
        await owners_of(session, CUSTOMERS, {("src-1", "t-3"), ("src-2", "t-40")}, SINCE)
        owners, by_source = await plans(history, statements)
        await tx.answered_conversations("src-1", CUSTOMERS, THREADS, SINCE)
        [answered] = await plans(history, statements)
        await tx.recent_texts(LINKS, SINCE)
        [texts] = await plans(history, statements)
    for plan in (owners, by_source):
        assert re.search(one_range("ix_mentions_customer_created", "customer_id",
                                   "created_at"), plan), plan
    assert re.search(one_range("ix_mentions_customer_answered", "customer_id",
                               "first_response_at"), answered), answered
    assert re.search(one_range("ix_mentions_customer_created", "customer_id", "created_at"),
                     texts), texts
    for plan in (owners, by_source, answered, texts):
        assert not re.search(r"^SCAN mentions|Seq Scan on mentions", plan, re.M), plan


async def test_lookups_answer_what_every_row_says(history: Store) -> None:
    rows = history_rows()
    async with history.write() as session:
        tx = IngestTx(session)
        owners = await tx.conversation_owners(CUSTOMERS, "src-1", THREADS, SINCE)
        answered = await tx.answered_conversations("src-1", CUSTOMERS, THREADS, SINCE)
        texts = await tx.recent_texts(LINKS, SINCE)

    def in_thread(row: dict[str, Any]) -> bool:
        return row["source"] == "src-1" and row["thread"] in THREADS

    assert owners == [  # oldest first, as stored
        ConversationOwner(r["customer_id"], r["source"], r["thread"], r["created_at"],
                          r["assignee"]) for r in rows
        if r["assignee"] and (in_thread(r) or (r["customer_id"] in CUSTOMERS
                                               and r["created_at"] >= SINCE))]
    assert any(o.created_at == SINCE for o in owners)  # the bound is inclusive
    assert answered == [
        AnsweredMention(r["id"], r["customer_id"], r["source"], r["thread"],
                        r["first_response_at"]) for r in rows
        if r["first_response_at"] and (
            in_thread(r) or (r["customer_id"] in CUSTOMERS and r["first_response_at"] >= SINCE))]
    assert any(m.first_response_at >= SINCE > next(
        r["created_at"] for r in rows if r["id"] == m.id) for m in answered)
    assert sorted(texts) == sorted(
        (r["author_id"], r["text"], r["created_at"]) for r in rows
        if r["author_id"] in AUTHORS and r["created_at"] >= SINCE)
    assert any(at == SINCE for _, _, at in texts)


async def test_last_assigned_seeks_each_assignee_instead_of_walking_the_history(
        history: Store) -> None:
    statements = Statements(history.engine)
    async with history.write() as session:
        await last_assigned(session)
    [(sql, params)] = statements.take()
    plan = await executed_plan(history, sql) if history.dialect == "postgresql" else \
        await statements.plan(sql, params)
    reads = [line for line in plan.splitlines() if re.search(r"\bmentions\b", line)]
    assert len(reads) == 3, plan  # the first name, the next name, a name's newest mention
    for line in reads:  # every read of mentions is a seek in the assignee index
        assert re.search(r"SEARCH mentions USING COVERING INDEX ix_mentions_assignee_id|"
                         r"Index Only Scan (Backward )?using ix_mentions_assignee_id", line), plan


async def executed_plan(store: Store, sql: str) -> str:
    """PostgreSQL 15's plain EXPLAIN leaves out the subquery of a recursive CTE's step;
    EXPLAIN ANALYZE shows it. Sequential scans off, as on a big table."""
    async with store.engine.connect() as connection:
        await connection.exec_driver_sql("SET enable_seqscan = off")
        rows = await connection.exec_driver_sql("EXPLAIN (ANALYZE, COSTS off) " + sql)
        return "\n".join(row[0] for row in rows)


def newest_assignee(rows: list[dict[str, Any]]) -> str | None:
    return next((r["assignee"] for r in sorted(rows, key=lambda r: -r["id"])
                 if r["assignee"]), None)


async def test_last_assigned_is_the_assignee_of_the_newest_assigned_mention(
        store: Store) -> None:
    async with store.write() as session:
        assert await last_assigned(session) is None  # nothing stored yet
    rows = [dict(r, author_id=None, customer_id=None) for r in history_rows()]
    newest = [dict(rows[-1], id=STORED + n, external_id=f"late-{n}", assignee=None)
              for n in range(1, 300)]  # a long unassigned run, as when every agent is full
    async with store.write() as session:
        await session.execute(insert(Mention), rows + newest)
    steps = [  # (mention id, new assignee); the assignee needs no `agents` row
        (None, None), (40, "zeynep"), (STORED + 5, "john"), (STORED + 5, None),
        (STORED + 200, "ayse"), (12, "zeynep"), (STORED + 200, None),
    ]
    for mention_id, assignee in steps:
        async with store.write() as session:
            if mention_id is not None:
                await session.execute(update(Mention).where(Mention.id == mention_id)
                                      .values(assignee=assignee))
                for row in rows + newest:
                    if row["id"] == mention_id:
                        row["assignee"] = assignee
            got = await last_assigned(session)
            assert got == newest_assignee(rows + newest), (mention_id, assignee)
            assert await IngestTx(session).last_assigned() == got
