"""`listener ingest` in big batches stores exactly what storing one mention at a time does.

The batch path decides every new author's customer in one pass and writes with a few
set-based statements; these tests feed it what makes that hard — CRM-known handles,
new authors sharing an e-mail or a phone with a known customer or with each other,
repeat authors, duplicates within a batch and across runs, a brand reply — and compare
every stored row, link and event with a run of the same file one mention per batch.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from listener.app import build_services
from listener.customers_import import import_customers
from listener.ingest_file import ingest_file
from listener.models import Author, Customer, CustomerIdentity, CustomerLink, Mention, MentionEvent
from listener.pipeline import ingest as pipeline_module
from tests.conftest import MONDAY_10, make_config

CRM = [
    {"external_id": "c-vip", "name": "Ali Vip", "identities": ["twitter:@crm_ali"],
     "segment": "vip"},
    {"external_id": "c-mail", "name": "Mail Known", "email": "known@example.com"},
    {"external_id": "c-phone", "name": "Phone Known", "phone": "+90 532 111 22 33"},
]


def line(i: int, channel: str, handle: str, text: str, **author: Any) -> dict[str, Any]:
    at = MONDAY_10 - timedelta(minutes=300 - i)
    return {"id": f"m-{i}", "text": text, "channel": channel, "url": f"https://e.x/{i}",
            "created_at": at.isoformat(), "author": {"handle": handle, "name": handle, **author}}


def mentions() -> list[dict[str, Any]]:
    """The hard cases first, then 160 generated mentions of 40 people. A batch decides
    its new authors in (channel, handle) order, so accounts of one new person appear
    in that order here: then one at a time makes the same person the first."""
    lines = [
        line(0, "twitter", "crm_ali", "Siparişim nerede?"),               # CRM handle
        line(1, "web", "formfill", "Where is my refund?", email="Known@Example.com"),
        line(2, "email", "caller", "Faturam yanlış", phone="0532 111 22 33"),
        line(3, "email", "newbie_mail", "Still waiting", email="NEW@example.com"),
        line(4, "twitter", "newbie", "Kargo gelmedi", email="new@example.com"),
        line(5, "mastodon", "phone_a", "App crashes", phone="0533 999 88 77"),
        line(6, "reddit", "phone_b", "Uygulama çöktü", phone="+905339998877"),
        line(7, "twitter", "repeat", "İade istiyorum"),
        line(8, "twitter", "repeat", "İade istiyorum, cevap yok", ),
        line(0, "twitter", "crm_ali", "a re-sent line"),                   # duplicate id
    ]
    rng = random.Random(5)
    channels = ("twitter", "web", "email", "mastodon")
    texts = ("Siparişim {n} gelmedi!", "Refund for order {n}?", "Teşekkürler, {n} geldi",
             "Charged twice for {n}", "Kargo {n} nerede?")
    for i in range(20, 180):
        person = rng.randrange(40)
        channel = channels[person % len(channels)]  # one account per person
        author: dict[str, Any] = {"followers": rng.choice((5, 500, 50_000))}
        if person % 3 == 0:
            author["email"] = f"p{person}@example.com"
        if person % 7 == 0:
            author["phone"] = f"0532 555 {person:02d} {person:02d}"
        if person == 11:
            author["email"] = "known@example.com"  # a stranger's account of a CRM customer
        lines.append(line(i, channel, f"p{person}",
                          rng.choice(texts).format(n=rng.randrange(1000, 9999)), **author))
        if rng.random() < 0.05:
            lines.append({**lines[-1], "text": "sent twice"})
    # Last: a batch records brand replies after routing its mentions, one at a time
    # would free the answered mention's agent for the lines after it.
    return [*lines, {**line(9, "twitter", "acme", "Bakıyoruz, DM atar mısınız?"),
                     "in_reply_to": "m-0"}]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
                    encoding="utf-8")
    return path


async def stored(services: Any) -> dict[str, Any]:
    """Everything ingest wrote, with database ids replaced by what they stand for."""
    async with services.store.read() as session:
        authors = (await session.execute(select(Author))).scalars().all()
        customers = {c.id: c for c in (await session.execute(select(Customer))).scalars()}
        handles: dict[int, list[str]] = defaultdict(list)
        for author in authors:
            handles[author.customer_id].append(f"{author.channel}:{author.handle}")

        def who(customer_id: int | None) -> Any:
            if customer_id is None:
                return None
            customer = customers[customer_id]
            return (customer.external_id, tuple(sorted(handles[customer_id])),
                    customer.display_name, customer.email, customer.segment)

        author_key = {a.id: f"{a.channel}:{a.handle}" for a in authors}
        identities = (await session.execute(select(CustomerIdentity))).scalars().all()
        identity_key = {i.id: f"{i.kind}:{i.channel}:{i.value}" for i in identities}
        rows = (await session.execute(select(Mention))).scalars().all()
        external = {m.id: m.external_id for m in rows}
        events: dict[str, list[Any]] = defaultdict(list)
        for event in (await session.execute(select(MentionEvent))).scalars():
            data = dict(event.data or {})
            if "follow_up_of" in data:
                data["follow_up_of"] = external[data["follow_up_of"]]
            events[external[event.mention_id]].append(
                (event.kind, event.actor, json.dumps(data, sort_keys=True)))
        links = (await session.execute(select(CustomerLink))).scalars().all()
        return {
            "customers": ordered(map(who, customers)),
            "authors": ordered((author_key[a.id], a.name, a.followers, a.email,
                                who(a.customer_id)) for a in authors),
            "identities": ordered((identity_key[i.id], who(i.customer_id))
                                  for i in identities),
            "mentions": ordered(
                (m.external_id, m.channel, m.status, m.assignee, m.lang, m.sentiment,
                 m.priority, m.sla_policy, m.deadline_at, m.at_risk_at, m.first_response_at,
                 m.brand, m.counted, external.get(m.follow_up_of), author_key[m.author_id],
                 who(m.customer_id)) for m in rows),
            "events": {key: ordered(found) for key, found in events.items()},
            "links": ordered(
                (link.action, who(link.customer_id), link.identity, link.actor,
                 identity_key.get(link.identity_id),
                 sorted(author_key[a] for a in (link.undo or {}).get("authors", [])),
                 sorted(identity_key[i] for i in (link.undo or {}).get("identities", [])))
                for link in links),
        }


def ordered(rows: Any) -> list[Any]:
    return sorted(rows, key=repr)


async def ingest_run(db_url: str, tmp_path: Path, clock: Any, enricher: Any,
                     batch: int) -> dict[str, Any]:
    """A fresh database: the CRM import, then the file twice (the second run: duplicates),
    `batch` lines a transaction."""
    services = build_services(make_config(db_url), clock=clock, enricher=enricher)
    await import_customers(services, write(tmp_path / "crm.jsonl", CRM))
    path = write(tmp_path / "mentions.jsonl", mentions())
    first = await ingest_file(services, path, None, progress=False, batch_size=batch)
    again = await ingest_file(services, path, None, progress=False, batch_size=batch)
    snapshot = await stored(services)
    await services.store.close()
    snapshot["reports"] = (first.summary(), again.summary())
    return snapshot


async def empty_copy(db_url: str) -> str:
    """A second, empty database of the same kind for the one-at-a-time run."""
    if db_url.startswith("sqlite"):
        return db_url.replace("listener.db", "one_at_a_time.db")
    services = build_services(make_config(db_url))
    async with services.store.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await services.store.close()
    return db_url


# All in one; the cases split across batches; one batch written a few rows at a time
# while the next rows are planned.
@pytest.mark.parametrize(("batch", "slice_rows"), [(1000, 250), (7, 250), (1000, 3)])
async def test_big_batches_store_what_one_at_a_time_stores(
    db_url: str, tmp_path: Path, clock: Any, enricher: Any, monkeypatch: pytest.MonkeyPatch,
    batch: int, slice_rows: int,
) -> None:
    monkeypatch.setattr(pipeline_module, "WRITE_BEHIND_ROWS", slice_rows)
    monkeypatch.setattr(pipeline_module, "YIELD_ROWS", max(1, slice_rows // 2))
    batched = await ingest_run(db_url, tmp_path, clock, enricher, batch)
    single = await ingest_run(await empty_copy(db_url), tmp_path, clock, enricher, 1)
    for part in single:
        assert batched[part] == single[part], part


async def test_a_batch_links_on_strong_identifiers_only(
    db_url: str, tmp_path: Path, clock: Any, enricher: Any
) -> None:
    got = await ingest_run(db_url, tmp_path, clock, enricher, 1000)
    lines = mentions()
    unique = {row["id"] for row in lines}
    assert got["reports"] == (f"{len(lines)} lines: {len(unique)} stored, "
                              f"{len(lines) - len(unique)} duplicates, 0 rejected",
                              f"{len(lines)} lines: 0 stored, {len(lines)} duplicates, "
                              "0 rejected")
    owner = {author: customer for author, _, _, _, customer in got["authors"]}
    assert owner["twitter:crm_ali"][0] == "c-vip" and owner["twitter:crm_ali"][4] == "vip"
    assert owner["web:formfill"][0] == "c-mail"
    assert owner["email:caller"][0] == "c-phone"
    assert owner["twitter:newbie"] == owner["email:newbie_mail"]  # same e-mail, one new
    assert owner["twitter:newbie"][0] is None
    assert owner["mastodon:phone_a"] == owner["reddit:phone_b"]  # same phone
    assert owner["twitter:repeat"] != owner["twitter:newbie"]  # names never link
    actors = {(link[2], link[3]) for link in got["links"]}
    assert {("twitter:@crm_ali", "auto:crm"), ("web:@formfill", "auto:email"),
            ("email:@caller", "auto:phone"), ("twitter:@newbie", "auto:email"),
            ("reddit:@phone_b", "auto:phone")} <= actors
    assert len([a for a in got["authors"] if a[0] == "twitter:repeat"]) == 1
    mention = {row[0]: row for row in got["mentions"]}
    assert len(mention) == len(unique)
    assert mention["m-0"][10] is not None and mention["m-0"][2] == "responded"  # brand reply
    for key, events in got["events"].items():
        assert [kind for kind, _, _ in events].count("ingested") == 1, key


async def test_a_batch_that_fails_half_written_leaves_nothing_and_runs_again(
    db_url: str, tmp_path: Path, clock: Any, enricher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning fails after some of the batch's rows went to the database (a few rows at
    a time): the write in flight ends, the whole batch rolls back, and running the file
    again stores every line once."""
    services = build_services(make_config(db_url), clock=clock, enricher=enricher)
    monkeypatch.setattr(pipeline_module, "WRITE_BEHIND_ROWS", 3)
    monkeypatch.setattr(pipeline_module, "YIELD_ROWS", 1)
    plan = pipeline_module.Pipeline._plan
    planned: list[str] = []

    def failing(self: Any, source: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
        planned.append(item.external_id)
        if len(planned) == 20:
            raise RuntimeError("planning failed")
        return plan(self, source, item, *args, **kwargs)

    monkeypatch.setattr(pipeline_module.Pipeline, "_plan", failing)
    path = write(tmp_path / "mentions.jsonl", mentions())
    with pytest.raises(RuntimeError, match="planning failed"):
        await ingest_file(services, path, None, progress=False)
    async with services.store.read() as session:
        assert (await session.execute(select(Mention.id))).all() == []
        assert (await session.execute(select(MentionEvent.id))).all() == []
    monkeypatch.setattr(pipeline_module.Pipeline, "_plan", plan)
    report = await ingest_file(services, path, None, progress=False)
    unique = {row["id"] for row in mentions()}
    assert (report.stored, report.duplicates) == (len(unique), len(mentions()) - len(unique))
    async with services.store.read() as session:
        kinds = [kind for kind, in await session.execute(
            select(MentionEvent.kind).where(MentionEvent.kind == "ingested"))]
    assert len(kinds) == len(unique)


async def test_each_batch_of_lines_is_its_own_transaction(
    db_url: str, tmp_path: Path, clock: Any, enricher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--batch-size 7`: a run that fails in one batch keeps every batch before it, and
    running the file again stores only the rest."""
    services = build_services(make_config(db_url), clock=clock, enricher=enricher)
    lines = mentions()
    failing_line = next(i for i, row in enumerate(lines) if row["id"] == "m-25")
    kept = {row["id"] for row in lines[:failing_line // 7 * 7]}
    plan = pipeline_module.Pipeline._plan

    def failing(self: Any, source: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
        if item.external_id == "m-25":
            raise RuntimeError("planning failed")
        return plan(self, source, item, *args, **kwargs)

    monkeypatch.setattr(pipeline_module.Pipeline, "_plan", failing)
    path = write(tmp_path / "mentions.jsonl", lines)
    with pytest.raises(RuntimeError, match="planning failed"):
        await ingest_file(services, path, None, progress=False, batch_size=7)
    async with services.store.read() as session:
        assert set(await session.scalars(select(Mention.external_id))) == kept
    assert 7 < len(kept) < len({row["id"] for row in lines})
    monkeypatch.setattr(pipeline_module.Pipeline, "_plan", plan)
    report = await ingest_file(services, path, None, progress=False, batch_size=7)
    assert report.stored == len({row["id"] for row in lines}) - len(kept)
    await services.store.close()
