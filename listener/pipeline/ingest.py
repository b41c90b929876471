"""normalize → enrich → store → route → deadline, one transaction per batch.

The source's cursor is saved in the same transaction as the mentions it produced, so a
crash anywhere before the commit leaves neither and the next poll fetches them again;
the (source, external_id) key turns that re-fetch into duplicates, never double rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.base import RawItem, Rejected
from listener.brands import OURS, Brands
from listener.clock import SystemClock
from listener.metrics import Metrics
from listener.models import Mention
from listener.pipeline.enrich import Enricher
from listener.pipeline.noise import NoiseFilter, RepeatLog
from listener.pipeline.normalize import normalize
from listener.pipeline.route import Routing
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


def latest_in_conversation(item: RawItem, source: str, customer_id: int,
                           earlier: Sequence[Any], window: timedelta,
                           at: Callable[[Any], datetime]) -> Any:
    """The latest earlier record (by `at`, not after the item) of the same conversation:
    the same thread on this source at any time, or the same customer within `window`."""
    best = None
    for record in earlier:
        moment = at(record)
        if moment > item.created_at:
            continue
        same_thread = bool(item.thread) and record.source == source and \
            record.thread == item.thread
        same_customer = record.customer_id == customer_id and \
            item.created_at - moment <= window
        if (same_thread or same_customer) and (best is None or moment > at(best)):
            best = record
    return best


def find_follow_up(item: RawItem, source: str, customer_id: int,
                   answered: Sequence[AnsweredMention], window: timedelta) -> int | None:
    """The answered mention this one follows up (a next-response clock), if any."""
    found = latest_in_conversation(item, source, customer_id, answered, window,
                                   at=lambda m: m.first_response_at)
    return found.id if found else None


def find_owner(item: RawItem, source: str, customer_id: int,
               owners: Sequence[ConversationOwner], window: timedelta) -> str | None:
    """The agent who has (or last had) this customer's conversation (affinity)."""
    found = latest_in_conversation(item, source, customer_id, owners, window,
                                   at=lambda o: o.created_at)
    return found.assignee if found else None


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
        now = self.clock.now()
        unique: dict[str, RawItem] = {}
        for item in map(normalize, items):
            unique.setdefault(item.external_id, item)
        result = IngestResult(rejected=len(rejected), duplicates=len(items) - len(unique))
        async with self.store.write() as session:
            tx = IngestTx(session, self.phone_region)
            existing = await tx.existing_ids(source.id, unique)
            result.duplicates += len(existing)
            fresh = [item for key, item in unique.items() if key not in existing]
            if fresh:
                await self._store_fresh(tx, source, fresh, now, queue_after, result)
            tx.record_rejected(source.id, rejected, now)
            if save_cursor:
                await tx.save_cursor(source.id, source.kind, cursor, now, len(result.stored))
            if self.before_commit is not None:
                self.before_commit()
        self._count(source.id, result)
        if self.after_commit is not None and result.stored:
            self.after_commit()
        return result

    async def _store_fresh(self, tx: IngestTx, source: SourceInfo, fresh: list[RawItem],
                           now: datetime, queue_after: datetime | None,
                           result: IngestResult) -> None:
        # First, before any other row is touched: routing is serialised with the backlog
        # drain and other ingests, so no agent goes over max_open (and no lock cycles).
        await lock_routing(tx.session)
        links = await tx.link_authors(((i.channel, i.author) for i in fresh), now)
        loads = await tx.open_counts()
        last = await tx.last_assigned()
        away = await tx.away_agents()
        window = self.routing.affinity_window
        owners = await tx.conversation_owners(
            {link.customer_id for link in links.values()}, source.id,
            {item.thread for item in fresh if item.thread},
            min(item.created_at for item in fresh) - window)
        answered = await tx.answered_conversations(
            source.id, {link.customer_id for link in links.values()},
            {item.thread for item in fresh if item.thread},
            min(item.created_at for item in fresh) - self.follow_up_window)
        repeats = RepeatLog.of(await tx.recent_texts(
            {link.author_id for link in links.values()}, self.noise.since(fresh)))
        rows, events = [], {}
        for item in fresh:
            queued = queue_after is None or item.created_at >= queue_after
            link = links[(item.channel, item.author.handle)]
            follows = find_follow_up(item, source.id, link.customer_id, answered,
                                     self.follow_up_window)
            noise = self.noise.reason(item, link.author_id, repeats) if source.screened \
                else None
            owner = find_owner(item, source.id, link.customer_id, owners, window)
            values, decision = self._plan(source, item, link, now, queued, loads, last,
                                          follows, noise, away=away, owner=owner)
            if decision is not None and decision.agent_id:
                loads[decision.agent_id] = loads.get(decision.agent_id, 0) + 1
                last = decision.agent_id
                owners.append(ConversationOwner(link.customer_id, source.id, item.thread,
                                                item.created_at, decision.agent_id))
            rows.append(values)
            events[item.external_id] = self._events(source, item, now, queued, decision,
                                                    values["follow_up_of"], noise,
                                                    brand=values["brand"])
        ids = await tx.insert_mentions(rows)
        result.duplicates += len(rows) - len(ids)
        await tx.add_events([{**event, "mention_id": ids[external_id]}
                             for external_id, batch in events.items() if external_id in ids
                             for event in batch])
        for row in rows:
            if row["external_id"] in ids:
                result.stored.append(ids[row["external_id"]])
                result.channels.append(row["channel"])
                if row["counted"]:
                    result.voices.append((row["brand"], row["channel"], row["sentiment"]))
        for item in fresh:
            if self.is_brand(item, source) and item.external_id in ids:
                result.answered += await tx.record_native_reply(
                    source.id, item.author.handle, item.created_at, item.in_reply_to,
                    item.thread, reply_id=item.external_id, reply_url=item.url)

    def _plan(self, source: SourceInfo, item: RawItem, link: AuthorLink, now: datetime,
              queued: bool, loads: dict[str, int], last: str | None, follows: int | None,
              noise: str | None = None, *, away: set[str] | None = None,
              owner: str | None = None) -> tuple[dict[str, Any], Decision | None]:
        """The row to insert and the routing decision: enrich, deadline, route. A follow-up
        after a response gets a new clock under the policy's `next_response` rule."""
        enrichment = self.enricher.enrich(item.text, item.author.followers, item.lang,
                                          rating=item.rating)
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
        for channel in result.channels:
            self.metrics.ingested.labels(source=source_id, channel=channel).inc()
        if result.duplicates:
            self.metrics.duplicates.labels(source=source_id).inc(result.duplicates)
        if result.rejected:
            self.metrics.rejected.labels(source=source_id).inc(result.rejected)
        for brand, channel, sentiment in result.voices:
            self.metrics.brand_mentions.labels(brand=brand, channel=channel,
                                               sentiment=sentiment_class(sentiment)).inc()
        for mention in result.answered:
            self.metrics.observe_first_response(mention.channel, mention.sla_policy,
                                                mention.created_at, mention.first_response_at,
                                                mention.deadline_at)
