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
from listener.pipeline.enrich import Enricher
from listener.pipeline.normalize import normalize
from listener.pipeline.route import Routing
from listener.store import IngestTx, Store
from sla.planner import DeadlinePlanner
from sla.policy import MentionFacts


@dataclass
class IngestResult:
    stored: list[int] = field(default_factory=list)
    duplicates: int = 0
    rejected: int = 0
    responses: int = 0


@dataclass(frozen=True)
class SourceInfo:
    id: str
    kind: str


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

    def is_brand(self, item: RawItem) -> bool:
        return item.author.handle in self.brand.get(item.channel, ())

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
        stored_channels: list[str] = []
        async with self.store.write() as session:
            tx = IngestTx(session)
            existing = await tx.existing_ids(source.id, unique)
            result.duplicates += len(existing)
            fresh = [item for key, item in unique.items() if key not in existing]
            loads = await tx.open_counts() if fresh else {}
            last = await tx.last_assigned() if fresh else None
            for item in fresh:
                queued = queue_after is None or item.created_at >= queue_after
                mention_id, assignee = await self._store_one(
                    tx, source, item, now, queued, loads, last
                )
                if mention_id is None:
                    result.duplicates += 1
                    continue
                result.stored.append(mention_id)
                stored_channels.append(item.channel)
                if assignee:
                    loads[assignee] = loads.get(assignee, 0) + 1
                    last = assignee
                if item.in_reply_to and self.is_brand(item):
                    answered = await tx.record_native_reply(
                        source.id, item.in_reply_to, item.author.handle, item.created_at
                    )
                    result.responses += int(answered)
            tx.record_rejected(source.id, rejected, now)
            if save_cursor:
                await tx.save_cursor(source.id, source.kind, cursor, now)
            if self.before_commit is not None:
                self.before_commit()
        self._count(source.id, stored_channels, result)
        return result

    async def _store_one(
        self,
        tx: IngestTx,
        source: SourceInfo,
        item: RawItem,
        now: datetime,
        queued: bool,
        loads: dict[str, int],
        last: str | None,
    ) -> tuple[int | None, str | None]:
        enrichment = self.enricher.enrich(item.text, item.author.followers, item.lang)
        author_id, customer_id = await tx.link_author(item.channel, item.author, now)
        brand = self.is_brand(item)
        values: dict[str, Any] = {
            "source": source.id,
            "channel": item.channel,
            "external_id": item.external_id,
            "url": item.url,
            "author_id": author_id,
            "customer_id": customer_id,
            "text": item.text,
            "lang": enrichment.lang,
            "sentiment": enrichment.sentiment,
            "priority": enrichment.priority,
            "created_at": item.created_at,
            "ingested_at": now,
            "status": "new",
            "in_reply_to": item.in_reply_to,
        }
        decision = None
        if brand or not queued:
            values["status"] = "ignored"
        else:
            segment = await tx.segment_of(customer_id)
            facts = MentionFacts(
                channel=item.channel,
                source=source.id,
                lang=enrichment.lang,
                segment=segment,
                priority=enrichment.priority,
            )
            deadline = self.planner.plan(facts, item.created_at)
            if deadline is not None:
                values.update(
                    sla_policy=deadline.policy,
                    deadline_at=deadline.deadline_at,
                    at_risk_at=deadline.at_risk_at,
                )
            decision = self.routing.decide(facts, loads, now, last)
            if decision.agent_id:
                values.update(assignee=decision.agent_id, status="assigned")
        mention_id = await tx.insert_mention(values)
        if mention_id is None:
            return None, None
        tx.add_event(
            mention_id,
            "ingested",
            now,
            source.id,
            {
                "reason": "brand account"
                if brand
                else None
                if queued
                else "older than the backfill window"
            },
        )
        if decision is not None:
            tx.add_event(
                mention_id,
                "assigned" if decision.agent_id else "unassigned",
                now,
                "router",
                {"agent": decision.agent_id, "reason": decision.reason},
            )
        return mention_id, decision.agent_id if decision else None

    def _count(self, source_id: str, channels: list[str], result: IngestResult) -> None:
        for channel in channels:
            self.metrics.ingested.labels(source=source_id, channel=channel).inc()
        if result.duplicates:
            self.metrics.duplicates.labels(source=source_id).inc(result.duplicates)
        if result.rejected:
            self.metrics.rejected.labels(source=source_id).inc(result.rejected)
