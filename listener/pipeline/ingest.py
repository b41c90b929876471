"""normalize → enrich → store → route → deadline, one transaction per batch.

The source's cursor is saved in the same transaction as the mentions it produced, so a
crash anywhere before the commit leaves neither and the next poll fetches them again;
the (source, external_id) key turns that re-fetch into duplicates, never double rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from bisect import bisect_right, insort
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import RawItem, Rejected
from listener.brands import OURS, Brands
from listener.clock import SystemClock
from listener.metrics import Metrics
from listener.models import Mention
from listener.pipeline.enrich import Enricher, Enrichment
from listener.pipeline.noise import NoiseFilter, RepeatLog
from listener.pipeline.normalize import normalize
from listener.pipeline.route import Routing
from listener.pipeline.text_keys import TextKeys, text_keys
from listener.router import Decision
from listener.share_of_voice import sentiment_class
from listener.store import IngestTx, Store
from listener.store.ingest import AnsweredMention, AuthorLink
from listener.store.routing import ConversationOwner, lock_routing
from sla.planner import DeadlinePlanner
from sla.policy import MentionFacts


@dataclass
class IngestResult:
    stored: list[int] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    duplicates: int = 0
    rejected: int = 0
    answered: list[Mention] = field(default_factory=list)
    voices: list[tuple[str, str, float]] = field(default_factory=list)  # brand, channel, sentiment

    @property
    def responses(self) -> int:
        return len(self.answered)


@dataclass(frozen=True)
class SourceInfo:
    id: str
    kind: str
    channel: str | None = None
    screened: bool = True  # False: our own records (calls), never noise to filter


@dataclass(frozen=True)
class Prepared:
    """A batch normalised, without repeats, and enriched: ready for `Pipeline.write`."""

    unique: dict[str, RawItem]  # by external id, first copy kept
    enriched: dict[str, Enrichment]
    keys: dict[str, TextKeys]  # the worker's `text_keys`; the others are worked out when stored
    received: int  # items kept, repeats included
    quarantined: tuple[Rejected, ...] = ()  # items no later step could handle


EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)
"""Times an item may carry: a year's margin from the ends of the calendar, so adding a
deadline or a window to it, or seeing it in a local time zone, cannot overflow."""


def in_range(moment: datetime) -> bool:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return EARLIEST <= aware <= LATEST


def quarantine_out_of_range(items: Iterable[RawItem]
                            ) -> tuple[list[RawItem], list[Rejected]]:
    """Items a parser accepted with a real but unusable time (9999-12-31, year 1) are kept
    in rejected_items, not stored: the deadline step would fail on them, and with it the
    whole batch at every retry."""
    kept, rejected = [], []
    for item in items:
        if in_range(item.created_at):
            kept.append(item)
        else:
            payload = {"external_id": item.external_id, "channel": item.channel,
                       "created_at": item.created_at.isoformat(), "text": item.text}
            rejected.append(Rejected("created_at out of range",
                                     json.dumps(payload, ensure_ascii=False),
                                     item.external_id))
    return kept, rejected


def ready_batch(items: Sequence[RawItem], enrichments: Sequence[Enrichment],
                keys: Sequence[TextKeys] | None = None) -> Prepared:
    """What `Pipeline.prepare` makes of a batch that was normalised and enriched already
    (`listener ingest`'s lines, see `listener.pipeline.lines`), without redoing either;
    `keys`: the items' `text_keys`, when worked out already (`listener ingest`'s worker)."""
    kept, quarantined = quarantine_out_of_range(items)
    unique: dict[str, RawItem] = {}
    enriched: dict[str, Enrichment] = {}
    found_keys: dict[str, TextKeys] = {}
    for index, (item, found) in enumerate(zip(items, enrichments, strict=True)):
        if item.external_id not in unique and in_range(item.created_at):
            unique[item.external_id] = item
            enriched[item.external_id] = found
            if keys is not None:
                found_keys[item.external_id] = keys[index]
    return Prepared(unique, enriched, found_keys, len(kept), tuple(quarantined))


class Conversations:
    """Earlier records of the batch's conversations (owners, answered mentions), indexed
    by customer and by (source, thread) and kept sorted by time, so the latest earlier
    record of an item's conversation is two binary searches, not a scan of every record
    (a scan made a big batch quadratic)."""

    def __init__(self, records: Iterable[Any], at: Callable[[Any], datetime]):
        self._at = at
        self._count = 0
        self._by_customer: dict[Any, list[tuple[datetime, int, Any]]] = defaultdict(list)
        self._by_thread: dict[tuple[str, str], list[tuple[datetime, int, Any]]] = \
            defaultdict(list)
        # The first records are appended and each list sorted once (by time; newest-added
        # first among equal times, as `add` orders them): an insort per record compared
        # tuples of datetimes at every step and was most of a batch's planning time.
        at = self._at
        for record in records:
            self._count += 1
            entry = (at(record), -self._count, record)
            self._by_customer[record.customer_id].append(entry)
            if record.thread:
                self._by_thread[(record.source, record.thread)].append(entry)
        for entries in (*self._by_customer.values(), *self._by_thread.values()):
            entries.reverse()
            entries.sort(key=_at_of)

    @classmethod
    def answered(cls, records: Iterable[AnsweredMention]) -> Conversations:
        """Answered mentions, by when they were answered (follow-ups)."""
        return cls(records, at=lambda m: m.first_response_at)

    @classmethod
    def owners(cls, records: Iterable[ConversationOwner]) -> Conversations:
        """Who held each conversation, by when it began (affinity)."""
        return cls(records, at=lambda o: o.created_at)

    def add(self, record: Any) -> None:
        self._count += 1
        entry = (self._at(record), -self._count, record)  # equal times: the first added wins
        insort(self._by_customer[record.customer_id], entry)
        if record.thread:
            insort(self._by_thread[(record.source, record.thread)], entry)

    def latest(self, item: RawItem, source: str, customer_id: int | None,
               window: timedelta) -> Any:
        """The latest record (by `at`, not after the item) of the same conversation: the
        same thread on this source at any time, or the same customer within `window`."""
        best = _last_until(self._by_customer.get(customer_id, ()), item.created_at)
        if best is not None and item.created_at - best[0] > window:
            best = None
        if item.thread:
            in_thread = _last_until(self._by_thread.get((source, item.thread), ()),
                                    item.created_at)
            if in_thread is not None and (best is None or in_thread[:2] > best[:2]):
                best = in_thread
        return best[2] if best is not None else None


def _at_of(entry: tuple[datetime, int, Any]) -> datetime:
    return entry[0]


def _last_until(entries: Sequence[tuple[datetime, int, Any]], moment: datetime
                ) -> tuple[datetime, int, Any] | None:
    index = bisect_right(entries, (moment, 0))  # every entry's second field is < 0
    return entries[index - 1] if index else None


def find_follow_up(item: RawItem, source: str, customer_id: int,
                   answered: Conversations, window: timedelta) -> int | None:
    """The answered mention this one follows up (a next-response clock), if any."""
    found = answered.latest(item, source, customer_id, window)
    return found.id if found else None


def find_owner(item: RawItem, source: str, customer_id: int, owners: Conversations,
               window: timedelta) -> str | None:
    """The agent who has (or last had) this customer's conversation (affinity)."""
    found = owners.latest(item, source, customer_id, window)
    return found.assignee if found else None


WRITE_BEHIND_ROWS = 250
"""Rows planned before they are handed to the database, which inserts them while the
next ones are planned."""
YIELD_ROWS = 50
"""Rows planned between turns given to that write (each step of it needs one)."""


class _WriteBehind:
    """Inserts a batch's rows a slice at a time, each while the next slice is planned:
    the database works (in the driver's thread, or PostgreSQL's own process) while this
    process plans, instead of one waiting for the other. One write in flight at a time,
    in order, on the batch's one transaction."""

    def __init__(self, tx: IngestTx):
        self.tx = tx
        self.ids: dict[str, int] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    async def write(self, rows: list[dict[str, Any]],
                    events: dict[str, list[dict[str, Any]]]) -> None:
        await self._finish()
        if not rows:
            return
        for row in rows:
            self.rows[row["external_id"]] = row
        self._task = asyncio.ensure_future(self._insert(rows, events))
        await asyncio.sleep(0)  # let it reach the driver before planning goes on

    async def done(self) -> dict[str, int]:
        await self._finish()
        return self.ids

    async def __aenter__(self) -> _WriteBehind:
        return self

    async def __aexit__(self, kind: Any, *_: Any) -> None:
        """Planning failed: the write in flight still ends before the transaction rolls
        back (the driver cannot drop a statement half way); its own error, if any, is
        the lesser news."""
        if kind is not None and self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    async def _finish(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task

    async def _insert(self, rows: list[dict[str, Any]],
                      events: dict[str, list[dict[str, Any]]]) -> None:
        ids = await self.tx.insert_mentions(rows)
        self.ids.update(ids)
        await self.tx.add_events([{**event, "mention_id": ids[external_id]}
                                  for external_id, batch in events.items()
                                  if external_id in ids for event in batch])


def _count_stored(result: IngestResult, fresh: Sequence[RawItem], ids: dict[str, int],
                  rows: dict[str, dict[str, Any]]) -> None:
    """The stored mentions' ids, channels and (for share of voice) counted sentiments,
    in the batch's order; a row a concurrent writer stored first is not among them."""
    for item in fresh:
        mention_id = ids.get(item.external_id)
        if mention_id is None:
            continue
        row = rows[item.external_id]
        result.stored.append(mention_id)
        result.channels.append(row["channel"])
        if row["counted"]:
            result.voices.append((row["brand"], row["channel"], row["sentiment"]))


class Pipeline:
    def __init__(
        self,
        store: Store,
        enricher: Enricher,
        routing: Routing,
        planner: DeadlinePlanner,
        metrics: Metrics,
        brand_accounts: dict[str, Sequence[str]] | None = None,
        clock: Any = None,
        follow_up_window: timedelta = timedelta(hours=24),
        noise: NoiseFilter | None = None,
        phone_region: str = "TR",
        brands: Brands | None = None,
    ):
        self.store = store
        self.brands = brands or Brands()
        self.phone_region = phone_region
        self.noise = noise or NoiseFilter()
        self.follow_up_window = follow_up_window
        self.enricher = enricher
        self.routing = routing
        self.planner = planner
        self.metrics = metrics
        self.brand = {
            ch: {h.lstrip("@").casefold() for h in handles}
            for ch, handles in (brand_accounts or {}).items()
        }
        self.clock = clock or SystemClock()
        self.enrich_pool: Any = None  # an `EnrichPool`: big batches enriched on more cores
        self.before_commit: Callable[[], None] | None = None
        self.after_commit: Callable[[], None] | None = None

    def is_brand(self, item: RawItem, source: SourceInfo) -> bool:
        """`brand_accounts` is keyed by channel; the source's kind also works, so
        `twitter: [acme]` still applies to a twitter source with its own `channel`."""
        handle = item.author.handle
        return item.by_brand or handle in self.brand.get(item.channel, ()) or \
            handle in self.brand.get(source.kind, ())

    async def ingest(
        self,
        source: SourceInfo,
        items: Sequence[RawItem],
        cursor: str | None = None,
        save_cursor: bool = False,
        rejected: Sequence[Rejected] = (),
        queue_after: datetime | None = None,
    ) -> IngestResult:
        """Store a batch atomically. Items created before `queue_after` (a first poll's
        backfill limit) are kept for history but not queued: no deadline, status ignored."""
        return await self.write(source, await self.prepare(items), cursor, save_cursor,
                                rejected, queue_after)

    async def prepare(self, items: Sequence[RawItem]) -> Prepared:
        """The part of a batch's work that needs no database (normalising, dropping
        repeats within the batch, enrichment), so it can run while another batch is being
        written, and never holds up the writer (one at a time on SQLite)."""
        normalised = [normalize(item) for item in items]
        return ready_batch(normalised, await self._enrich(normalised))

    async def write(
        self,
        source: SourceInfo,
        prepared: Prepared,
        cursor: str | None = None,
        save_cursor: bool = False,
        rejected: Sequence[Rejected] = (),
        queue_after: datetime | None = None,
    ) -> IngestResult:
        """`ingest` of a batch `prepare` made ready: one transaction."""
        now = self.clock.now()
        unique = prepared.unique
        rejected = [*prepared.quarantined, *rejected]
        result = IngestResult(rejected=len(rejected),
                              duplicates=prepared.received - len(unique))
        async with self.store.write() as session:
            tx = IngestTx(session, self.phone_region)
            existing = await tx.existing_ids(source.id, unique)
            result.duplicates += len(existing)
            fresh = [item for key, item in unique.items() if key not in existing]
            if fresh:
                await self._store_fresh(tx, source, fresh, prepared, now, queue_after,
                                        result)
            tx.record_rejected(source.id, rejected, now)
            if save_cursor:
                await tx.save_cursor(source.id, source.kind, cursor, now, len(result.stored))
            if self.before_commit is not None:
                self.before_commit()
        self._count(source.id, result)
        if self.after_commit is not None and result.stored:
            self.after_commit()
        return result

    async def _enrich(self, items: list[RawItem]) -> list[Enrichment]:
        inputs = [(i.text, i.author.followers, i.lang, i.rating) for i in items]
        if self.enrich_pool is not None:
            return await self.enrich_pool.enrich_many(inputs)
        return self.enricher.enrich_many(inputs)

    async def _store_fresh(self, tx: IngestTx, source: SourceInfo, fresh: list[RawItem],
                           prepared: Prepared, now: datetime,
                           queue_after: datetime | None, result: IngestResult) -> None:
        # First, before any other row is touched: routing is serialised with the backlog
        # drain and other ingests, so no agent goes over max_open (and no lock cycles).
        await lock_routing(tx.session)
        links = await tx.link_authors(((i.channel, i.author) for i in fresh), now)
        loads = await tx.open_counts()
        # Least loaded never asks who was last (and on a big table it is a look-up more).
        last = await tx.last_assigned() if self.routing.strategy == "round_robin" else None
        away = await tx.away_agents()
        window = self.routing.affinity_window
        owners = Conversations.owners(await tx.conversation_owners(
            {link.customer_id for link in links.values()}, source.id,
            {item.thread for item in fresh if item.thread},
            min(item.created_at for item in fresh) - window))
        answered = Conversations.answered(await tx.answered_conversations(
            source.id, {link.customer_id for link in links.values()},
            {item.thread for item in fresh if item.thread},
            min(item.created_at for item in fresh) - self.follow_up_window))
        repeats = RepeatLog.of(await tx.recent_texts(links.values(), self.noise.since(fresh)))
        async with _WriteBehind(tx) as behind:
            rows: list[dict[str, Any]] = []
            events: dict[str, list[dict[str, Any]]] = {}
            for item in fresh:
                queued = queue_after is None or item.created_at >= queue_after
                link = links[(item.channel, item.author.handle)]
                follows = find_follow_up(item, source.id, link.customer_id, answered,
                                         self.follow_up_window)
                keys = prepared.keys.get(item.external_id) or text_keys(item)
                noise = self.noise.reason(item, link.author_id, repeats, keys.repeat_key) \
                    if source.screened else None
                owner = find_owner(item, source.id, link.customer_id, owners, window)
                values, decision = self._plan(source, item, prepared.enriched[item.external_id],
                                              keys, link, now, queued, loads, last, follows,
                                              noise, away=away, owner=owner)
                if decision is not None and decision.agent_id:
                    loads[decision.agent_id] = loads.get(decision.agent_id, 0) + 1
                    last = decision.agent_id
                    owners.add(ConversationOwner(link.customer_id, source.id, item.thread,
                                                 item.created_at, decision.agent_id))
                rows.append(values)
                events[item.external_id] = self._events(source, item, now, queued, decision,
                                                        values["follow_up_of"], noise,
                                                        brand=values["brand"])
                if len(rows) % YIELD_ROWS == 0:
                    await asyncio.sleep(0)  # the write in flight moves on to its next step
                if len(rows) >= WRITE_BEHIND_ROWS:
                    await behind.write(rows, events)
                    rows, events = [], {}
            await behind.write(rows, events)
            ids = await behind.done()
        result.duplicates += len(fresh) - len(ids)
        _count_stored(result, fresh, ids, behind.rows)
        for item in fresh:
            if self.is_brand(item, source) and item.external_id in ids:
                result.answered += await tx.record_native_reply(
                    source.id, item.author.handle, item.created_at, item.in_reply_to,
                    item.thread, reply_id=item.external_id, reply_url=item.url)

    def _plan(self, source: SourceInfo, item: RawItem, enrichment: Enrichment,
              keys: TextKeys, link: AuthorLink, now: datetime, queued: bool, loads: dict[str, int],
              last: str | None, follows: int | None,
              noise: str | None = None, *, away: set[str] | None = None,
              owner: str | None = None) -> tuple[dict[str, Any], Decision | None]:
        """The row to insert and the routing decision: enrich, deadline, route. A follow-up
        after a response gets a new clock under the policy's `next_response` rule."""
        priority = self.routing.priority_for(enrichment.priority, link.segment)
        values: dict[str, Any] = {
            "source": source.id, "channel": item.channel, "external_id": item.external_id,
            "url": item.url, "author_id": link.author_id, "customer_id": link.customer_id,
            "text": item.text, "lang": enrichment.lang, "sentiment": enrichment.sentiment,
            "priority": priority, "created_at": item.created_at,
            "ingested_at": now, "status": "new", "in_reply_to": item.in_reply_to,
            "thread": item.thread,
            "assignee": None, "sla_policy": None, "deadline_at": None, "at_risk_at": None,
            "next_alert_at": None, "alerts_fired": 0, "follow_up_of": None,
            "rating": item.rating,
            "search_text": keys.search_text,
        }
        # A competitor's mentions are stored, enriched and counted, never queued.
        mine = self.is_brand(item, source)
        brand = values["brand"] = OURS if mine else self.brands.brand_of(item, source.id,
                                                                          source.kind)
        values["counted"] = not (mine or noise or self.brands.own_post(item, brand,
                                                                       source.kind))
        if mine or not queued or noise or brand != OURS:
            values["status"] = "ignored"
            return values, None
        facts = MentionFacts(channel=item.channel, source=source.id, lang=enrichment.lang,
                             segment=link.segment, priority=priority)
        if follows is not None:
            values["follow_up_of"] = follows
            deadline = self.planner.plan_follow_up(facts, item.created_at)
        else:
            deadline = self.planner.plan(facts, item.created_at)
        if deadline is not None:
            values.update(sla_policy=deadline.policy, deadline_at=deadline.deadline_at,
                          at_risk_at=deadline.at_risk_at,
                          next_alert_at=deadline.at_risk_at or deadline.deadline_at)
        decision = self.routing.decide(facts, loads, now, last, away or (), owner)
        if decision.agent_id:
            values.update(assignee=decision.agent_id, status="assigned")
        return values, decision

    def _events(self, source: SourceInfo, item: RawItem, now: datetime, queued: bool,
                decision: Decision | None, follows: int | None,
                noise: str | None = None, brand: str = OURS) -> list[dict[str, Any]]:
        competitor = f"competitor: {brand}" if brand != OURS else None
        reason = ("brand account" if self.is_brand(item, source) else competitor or noise
                  or (None if queued else "older than the backfill window"))
        data: dict[str, Any] = {"reason": reason}
        if item.note:
            data["note"] = item.note
        if follows is not None:
            data["follow_up_of"] = follows
        events = [{"kind": "ingested", "at": now, "actor": source.id, "data": data}]
        if decision is not None:
            events.append({"kind": "assigned" if decision.agent_id else "unassigned",
                           "at": now, "actor": "router",
                           "data": {"agent": decision.agent_id, "reason": decision.reason}})
        return events

    def _count(self, source_id: str, result: IngestResult) -> None:
        for channel, count in Counter(result.channels).items():
            self.metrics.ingested.labels(source=source_id, channel=channel).inc(count)
        if result.duplicates:
            self.metrics.duplicates.labels(source=source_id).inc(result.duplicates)
        if result.rejected:
            self.metrics.rejected.labels(source=source_id).inc(result.rejected)
        voices = Counter((brand, channel, sentiment_class(sentiment))
                         for brand, channel, sentiment in result.voices)
        for (brand, channel, sentiment), count in voices.items():
            self.metrics.brand_mentions.labels(brand=brand, channel=channel,
                                               sentiment=sentiment).inc(count)
        for mention in result.answered:
            self.metrics.observe_first_response(mention.channel, mention.sla_policy,
                                                mention.created_at, mention.first_response_at,
                                                mention.deadline_at)
