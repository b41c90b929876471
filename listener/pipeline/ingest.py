"""normalize → enrich → store → route → deadline, one transaction per batch.

The source's cursor is saved in the same transaction as the mentions it produced, so a
crash anywhere before the commit leaves neither and the next poll fetches them again;
the (source, external_id) key turns that re-fetch into duplicates, never double rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base import RawItem, Rejected
from listener.clock import SystemClock
from listener.metrics import Metrics
from listener.models import Mention
from listener.pipeline.enrich import Enricher
from listener.pipeline.normalize import normalize
from listener.pipeline.route import Routing
from listener.router import Decision
from listener.store import IngestTx, Store
from listener.store.ingest import AuthorLink
from sla.planner import DeadlinePlanner
from sla.policy import MentionFacts


@dataclass
class IngestResult:
    stored: list[int] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    duplicates: int = 0
    rejected: int = 0
    answered: list[Mention] = field(default_factory=list)

    @property
    def responses(self) -> int:
        return len(self.answered)


@dataclass(frozen=True)
class SourceInfo:
    id: str
    kind: str
    channel: str | None = None


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
    ):
        self.store = store
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
            tx = IngestTx(session)
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
        return result

    async def _store_fresh(self, tx: IngestTx, source: SourceInfo, fresh: list[RawItem],
                           now: datetime, queue_after: datetime | None,
                           result: IngestResult) -> None:
        links = await tx.link_authors(((i.channel, i.author) for i in fresh), now)
        loads = await tx.open_counts()
        last = await tx.last_assigned()
        rows, events = [], {}
        for item in fresh:
            queued = queue_after is None or item.created_at >= queue_after
            link = links[(item.channel, item.author.handle)]
            values, decision = self._plan(source, item, link, now, queued, loads, last)
            if decision is not None and decision.agent_id:
                loads[decision.agent_id] = loads.get(decision.agent_id, 0) + 1
                last = decision.agent_id
            rows.append(values)
            events[item.external_id] = self._events(source, item, now, queued, decision)
        ids = await tx.insert_mentions(rows)
        result.duplicates += len(rows) - len(ids)
        await tx.add_events([{**event, "mention_id": ids[external_id]}
                             for external_id, batch in events.items() if external_id in ids
                             for event in batch])
        for row in rows:
            if row["external_id"] in ids:
                result.stored.append(ids[row["external_id"]])
                result.channels.append(row["channel"])
        for item in fresh:
            if self.is_brand(item, source) and item.external_id in ids:
                result.answered += await tx.record_native_reply(
                    source.id, item.author.handle, item.created_at, item.in_reply_to,
                    item.thread, reply_id=item.external_id, reply_url=item.url)

    def _plan(self, source: SourceInfo, item: RawItem, link: AuthorLink, now: datetime,
              queued: bool, loads: dict[str, int], last: str | None
              ) -> tuple[dict[str, Any], Decision | None]:
        """The row to insert and the routing decision: enrich, deadline, route."""
        enrichment = self.enricher.enrich(item.text, item.author.followers, item.lang)
        values: dict[str, Any] = {
            "source": source.id, "channel": item.channel, "external_id": item.external_id,
            "url": item.url, "author_id": link.author_id, "customer_id": link.customer_id,
            "text": item.text, "lang": enrichment.lang, "sentiment": enrichment.sentiment,
            "priority": enrichment.priority, "created_at": item.created_at,
            "ingested_at": now, "status": "new", "in_reply_to": item.in_reply_to,
            "thread": item.thread,
            "assignee": None, "sla_policy": None, "deadline_at": None, "at_risk_at": None,
        }
        if self.is_brand(item, source) or not queued:
            values["status"] = "ignored"
            return values, None
        facts = MentionFacts(channel=item.channel, source=source.id, lang=enrichment.lang,
                             segment=link.segment, priority=enrichment.priority)
        deadline = self.planner.plan(facts, item.created_at)
        if deadline is not None:
            values.update(sla_policy=deadline.policy, deadline_at=deadline.deadline_at,
                          at_risk_at=deadline.at_risk_at)
        decision = self.routing.decide(facts, loads, now, last)
        if decision.agent_id:
            values.update(assignee=decision.agent_id, status="assigned")
        return values, decision

    def _events(self, source: SourceInfo, item: RawItem, now: datetime, queued: bool,
                decision: Decision | None) -> list[dict[str, Any]]:
        reason = ("brand account" if self.is_brand(item, source)
                  else None if queued else "older than the backfill window")
        data: dict[str, Any] = {"reason": reason}
        if item.note:
            data["note"] = item.note
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
        for mention in result.answered:
            self.metrics.observe_first_response(mention.channel, mention.sla_policy,
                                                mention.created_at, mention.first_response_at,
                                                mention.deadline_at)
