"""Reads that stay flat as history grows: the statements the app really issues for the
API's pages, the SLA summary, the queue page and the gauges use an index (EXPLAIN), and
the summary's counts (kept partly by triggers) match a count over every row."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from listener.app import init_app
from listener.gauges import refresh_gauges
from listener.models import Author, Customer, Mention
from listener.store.queries import encode_cursor, sla_state_expression
from tests.conftest import MONDAY_10
from tests.web.logins import login_as

AUTH = {"Authorization": "Bearer test-token"}
CHANNELS = ("twitter", "web", "email", "reddit")
STORED, OPEN = 1200, 120


def mention_rows() -> list[dict[str, Any]]:
    """A history: settled mentions (met, missed, ignored after the clock started, ignored
    with no clock) and, newest, open ones on both sides of their deadline."""
    rows = []
    for i in range(1, STORED + 1):
        created = MONDAY_10 - timedelta(hours=STORED - i)
        row = {"id": i, "source": f"src-{i % 3}", "channel": CHANNELS[i % 4],
               "external_id": f"e-{i}", "author_id": 1 + i % 40, "customer_id": 1 + i % 40,
               "text": f"kargo iade #{i}", "lang": ("tr", "en")[i % 2],
               "created_at": created, "ingested_at": created, "status": "responded",
               "assignee": ("ayse", "john", None)[i % 3], "priority": "normal",
               "sla_policy": "same-day", "deadline_at": created + timedelta(hours=4),
               "at_risk_at": created + timedelta(hours=3), "first_response_at": None}
        if i > STORED - OPEN:
            row["status"] = "assigned" if row["assignee"] else "new"
        elif i % 10 == 0:
            row["status"] = "ignored"
        elif i % 10 == 1:
            row.update(status="ignored", deadline_at=None, at_risk_at=None)
        else:
            row["first_response_at"] = created + timedelta(hours=i % 7)
        rows.append(row)
    return rows


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    client = await aiohttp_client(init_app(services, background=False))
    async with services.store.write() as session:
        await session.execute(insert(Customer), [
            {"id": i, "display_name": f"C {i}", "created_at": MONDAY_10,
             "segment": ("vip", None)[i % 2]} for i in range(1, 41)])
        await session.execute(insert(Author), [
            {"id": i, "channel": "twitter", "handle": f"user{i}", "name": f"User {i}",
             "customer_id": i} for i in range(1, 41)])
        await session.execute(insert(Mention), mention_rows())
    if services.store.dialect == "postgresql":
        async with services.store.engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")  # as autovacuum would
    return client


class Statements:
    """Every statement that reads `mentions`, with its parameters, as sent to the driver."""

    def __init__(self, engine: Any):
        self.seen: list[tuple[str, Any]] = []
        self.engine = engine
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any,
                _context: Any, _many: bool) -> None:
        if re.search(r"\bFROM mentions\b", statement) and not statement.startswith("EXPLAIN"):
            self.seen.append((statement, parameters))

    def take(self) -> list[tuple[str, Any]]:
        seen, self.seen = self.seen, []
        return seen

    async def plan(self, statement: str, parameters: Any) -> str:
        """EXPLAIN of the statement as the app sent it. PostgreSQL is told to avoid
        sequential scans and sorts, as it would on a big table: one still chosen means no
        index can serve the query (on a table this small it might otherwise choose them)."""
        async with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                        parameters)
                return "\n".join(row[-1] for row in rows)
            await connection.exec_driver_sql("SET enable_seqscan = off")
            await connection.exec_driver_sql("SET enable_sort = off")
            rows = await connection.exec_driver_sql("EXPLAIN " + inlined(statement, parameters))
            return "\n".join(row[0] for row in rows)


def inlined(statement: str, parameters: Any) -> str:
    """asyncpg's `$n` placeholders replaced by SQL literals, so EXPLAIN sees the values."""
    def literal(match: re.Match[str]) -> str:
        value = parameters[int(match.group(1)) - 1]
        if value is None:
            return "NULL"
        if isinstance(value, bool | int | float):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"
    return re.sub(r"\$(\d+)", literal, statement)


def table_scan(plan: str) -> bool:
    """Every row of mentions read: the table, or an index other than the open ones'."""
    return bool(re.search(r"^SCAN mentions( USING (COVERING )?INDEX (?!ix_mentions_open\b)"
                          r"\S+)?$|Seq Scan on mentions", plan, re.MULTILINE))


def sorted_after(plan: str) -> bool:
    """Rows sorted after reading them all, so a LIMIT cannot stop the read early."""
    return bool(re.search(r"TEMP B-TREE FOR ORDER BY|^\s*(->  )?Sort\b", plan, re.MULTILINE))


async def plans_of(client: Any, statements: Statements, path: str) -> list[tuple[str, str]]:
    statements.take()
    response = await client.get(path, headers=AUTH)
    assert response.status == 200, await response.text()
    return [(sql, await statements.plan(sql, params)) for sql, params in statements.take()]


@pytest.mark.parametrize("path, index", [
    ("/api/v1/mentions?channel=reddit", "ix_mentions_channel_id"),
    ("/api/v1/mentions?assignee=ayse", "ix_mentions_assignee_id"),
    ("/api/v1/mentions?status=new", "ix_mentions_status_id"),
    ("/api/v1/mentions?source=src-1", "ix_mentions_source_id"),
    (f"/api/v1/mentions?channel=web&cursor={encode_cursor(500)}", "ix_mentions_channel_id"),
])
async def test_filtered_and_deep_api_pages_are_one_index_range(
        client: Any, services: Any, path: str, index: str) -> None:
    statements = Statements(services.store.engine)
    [(sql, plan)] = [(s, p) for s, p in await plans_of(client, statements, path)
                     if "ORDER BY" in s]
    assert index in plan, f"{sql}\n{plan}"
    assert not table_scan(plan) and not sorted_after(plan), f"{sql}\n{plan}"


async def test_first_and_cursor_pages_walk_the_id_order_and_stop(
        client: Any, services: Any) -> None:
    statements = Statements(services.store.engine)
    for path in ("/api/v1/mentions", f"/api/v1/mentions?cursor={encode_cursor(300)}"):
        plans = await plans_of(client, statements, path)
        assert plans, path
        for sql, plan in plans:  # SQLite's "SCAN mentions" here walks the rowid backwards
            assert "Seq Scan" not in plan and not sorted_after(plan), f"{sql}\n{plan}"
    items = (await (await client.get(f"/api/v1/mentions?cursor={encode_cursor(300)}&limit=3",
                                     headers=AUTH)).json())["items"]
    assert [m["id"] for m in items] == [299, 298, 297]


async def test_summary_queue_and_gauges_read_open_mentions_only(
        client: Any, services: Any) -> None:
    statements = Statements(services.store.engine)
    await login_as(client, services, role="lead")
    plans = []
    for path in ("/api/v1/sla/summary", "/", "/?lang=en&state=breached", "/?page=2",
                 "/?assignee=unassigned"):
        plans += await plans_of(client, statements, path)
    await refresh_gauges(services.store, services.metrics, services.clock)
    plans += [(sql, await statements.plan(sql, params)) for sql, params in statements.take()]
    assert len(plans) >= 10
    for sql, plan in plans:
        if "mentions.id IN" in sql:  # the page's own rows, by primary key
            assert re.search(r"SEARCH mentions USING INTEGER PRIMARY KEY|pk_mentions", plan)
            continue
        assert not table_scan(plan), f"{sql}\n{plan}"
        assert re.search(STATUS_RANGE, plan), f"{sql}\n{plan}"


# Open mentions (or the few settled ones whose deadline is ahead) found through an index
# on status: the open mentions' partial index or a range on a status-first one.
STATUS_RANGE = (r"ix_mentions_open|ix_mentions_status_\w+ \(status=|"
                r"ix_mentions_status_\w+ .*\n.*Index Cond: \(+\(?status\b")


async def summary_matches_a_full_count(client: Any, services: Any) -> dict[str, Any]:
    summary = await (await client.get("/api/v1/sla/summary", headers=AUTH)).json()
    async with services.store.read() as session:
        state = sla_state_expression(services.clock.now())
        rows = (await session.execute(select(Mention.channel, state))).all()
    counted = Counter((channel, st) for channel, st in rows if st is not None)
    assert summary["channels"] == {
        channel: {st: counted[(channel, st)] for st in summary["states"]}
        for channel in {c for c, _ in counted}}
    assert summary["states"] == {st: sum(n for (_, s), n in counted.items() if s == st)
                                 for st in summary["states"]}
    return summary


async def test_summary_counts_match_a_count_of_every_row_as_mentions_change(
        client: Any, services: Any, clock: Any) -> None:
    first = await summary_matches_a_full_count(client, services)
    assert first["states"]["met"] and first["states"]["missed"]
    assert first["open"] == OPEN
    newest = STORED
    # an answer, an ignore, a reopened mention and a moved deadline go through the tallies
    assert (await client.post(f"/api/v1/mentions/{newest}/respond", json={},
                              headers=AUTH)).status == 200
    assert (await client.post(f"/api/v1/mentions/{newest - 1}/ignore",
                              json={"reason": "spam"}, headers=AUTH)).status == 200
    async with services.store.write() as session:
        await session.execute(update(Mention).where(Mention.id == 2).values(
            status="new", first_response_at=None))
        await session.execute(update(Mention).where(Mention.id == 3).values(
            deadline_at=MONDAY_10 - timedelta(days=400)))
        await session.execute(update(Mention).where(Mention.id == 6).values(channel="sms"))
    second = await summary_matches_a_full_count(client, services)
    assert second["open"] == OPEN - 1
    clock.advance(timedelta(hours=9))  # the ignored one's deadline passes: breached
    third = await summary_matches_a_full_count(client, services)
    assert third["states"]["breached"] > second["states"]["breached"]


async def test_an_ingest_batchs_lookups_read_only_its_customers_and_threads(
        client: Any, services: Any) -> None:
    """What a batch reads before writing (its duplicates, its conversations' owners and
    answers, its authors' recent texts) goes by index however long the history is."""
    from listener.store.ingest import AuthorLink, IngestTx
    from listener.store.routing import owners_of

    statements = Statements(services.store.engine)
    since = MONDAY_10 - timedelta(days=2)
    async with services.store.write() as session:
        tx = IngestTx(session)
        owners = await tx.conversation_owners({1, 2, 3}, "src-1", {"t-1", "t-2"}, since)
        await owners_of(session, {1}, {("src-1", "t-1"), ("src-2", "t-2")}, since)
        answered = await tx.answered_conversations("src-1", {1, 2, 3}, {"t-1"}, since)
        texts = await tx.recent_texts([AuthorLink(a, a, None) for a in (1, 2, 3)], since)
        assert await tx.existing_ids("src-1", ["e-1", "e-2", "e-4"]) == {"e-1", "e-4"}
    seen = statements.take()
    assert len(seen) == 5
    for sql, params in seen:
        plan = await statements.plan(sql, params)
        assert not table_scan(plan), (sql, plan)
    rows = [row for row in mention_rows() if row["created_at"] >= since]
    assert sorted((o.customer_id, o.created_at, o.assignee) for o in owners) == sorted(
        (r["customer_id"], r["created_at"], r["assignee"]) for r in rows
        if r["customer_id"] in {1, 2, 3} and r["assignee"])
    assert [m.id for m in answered] == sorted(
        r["id"] for r in mention_rows() if r["customer_id"] in {1, 2, 3}
        and r["first_response_at"] and r["first_response_at"] >= since)
    assert sorted((a, t) for a, t, _ in texts) == sorted(
        (r["author_id"], r["text"]) for r in rows if r["author_id"] in {1, 2, 3})
