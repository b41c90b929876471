"""Tables. Times are stored in UTC and always come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OPEN_STATUSES = ("new", "assigned")
# Written out, not bound: a query names open mentions with exactly this text (see
# `listener.store.queries.is_open`) so SQLite and PostgreSQL can use the partial index.
OPEN_SQL = "status IN ('new', 'assigned')"
ANSWERED_SQL = "first_response_at IS NOT NULL"
# Ids that outgrow 2**31 (mentions and what hangs off them): BIGINT on PostgreSQL; on
# SQLite an INTEGER PRIMARY KEY is already the 64-bit rowid, and must stay that type.
BigId = BigInteger().with_variant(Integer(), "sqlite")
STATUSES = ("new", "assigned", "responded", "closed", "ignored")


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite has no time zones: store naive UTC, hand back aware UTC on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SourceState(Base):
    """A source's cursor and health; the cursor is committed with the mentions it produced."""

    __tablename__ = "source_states"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    cursor: Mapped[str | None] = mapped_column(Text)
    first_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_outcome: Mapped[str | None] = mapped_column(String(30))
    last_items: Mapped[int | None] = mapped_column(Integer)


class SourceLease(Base):
    """Which `listener serve` replica polls a source, until `expires_at` unless renewed."""

    __tablename__ = "source_leases"
    source_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LiveReplica(Base):
    """A `listener serve` replica's heartbeat: the live ones split the sources evenly."""

    __tablename__ = "live_replicas"
    holder: Mapped[str] = mapped_column(String(200), primary_key=True)
    alive_until: Mapped[datetime] = mapped_column(UTCDateTime)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    segment: Mapped[str | None] = mapped_column(String(50), index=True)  # queue filter form
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The CRM's id: a CRM import updates the customer with the same one.
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    lifetime_value: Mapped[float | None] = mapped_column(Float)
    # Set when merged into another customer: this one is then empty, kept for undo.
    merged_into: Mapped[int | None] = mapped_column(Integer)


class CustomerIdentity(Base):
    """Something that identifies one customer: a handle on a channel, an e-mail, a phone
    (E.164) or a CRM id. Values are normalised, so one value belongs to one customer."""

    __tablename__ = "customer_identities"
    __table_args__ = (
        UniqueConstraint("kind", "channel", "value", name="uq_customer_identities_kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(30), default="")  # "" unless a handle
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerLink(Base):
    """Audit of every link, merge and split, automatic or by hand, with what undoing
    it needs (`undo`: the rows that moved and where they came from)."""

    __tablename__ = "customer_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    other_customer_id: Mapped[int | None] = mapped_column(Integer)
    identity_id: Mapped[int | None] = mapped_column(Integer)
    identity: Mapped[str | None] = mapped_column(String(400))
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undo: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CustomerNote(Base):
    """A note or an offer an agent left on a customer: part of their timeline."""

    __tablename__ = "customer_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Author(Base):
    """One account on one channel; several authors can belong to one customer."""

    __tablename__ = "authors"
    __table_args__ = (UniqueConstraint("channel", "handle", name="uq_authors_channel_handle"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(30))
    handle: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    followers: Mapped[int | None] = mapped_column(Integer)
    email: Mapped[str | None] = mapped_column(String(320))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)


class Agent(Base):
    """Mirror of the config's agents, so history and joins survive config edits."""

    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_open: Mapped[int] = mapped_column(Integer, default=25)
    shift: Mapped[str | None] = mapped_column(String(200))
    slack: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    # Set by the agent (API), never by config sync: "away" takes them out of routing.
    status: Mapped[str] = mapped_column(String(20), default="available",
                                        server_default="available")


class Mention(Base):
    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_mentions_source_external_id"),
        Index("ix_mentions_status_deadline", "status", "deadline_at"),
        Index("ix_mentions_source_thread", "source", "thread"),
        # The API's pages are newest first: an equality filter, then the id, so a page
        # (and a deep cursor) is one index range on both databases.
        Index("ix_mentions_status_id", "status", "id"),
        Index("ix_mentions_channel_id", "channel", "id"),
        Index("ix_mentions_source_id", "source", "id"),
        Index("ix_mentions_assignee_id", "assignee", "id"),
        # Open mentions only, with every column the queue, the SLA summary, the gauges
        # and the filter form read: those never touch the table or the settled history.
        Index("ix_mentions_open", "status", "channel", "deadline_at", "at_risk_at",
              "first_response_at", "assignee", "lang", "source", "priority", "created_at", "id",
              sqlite_where=text(OPEN_SQL), postgresql_where=text(OPEN_SQL)),
        Index("ix_mentions_next_alert_at", "next_alert_at"),
        # The spike watcher counts mentions by posting time every 30 s, five windows at once.
        Index("ix_mentions_created_at", "created_at"),
        # A batch's look-ups want its customers' mentions since a moment: one index range
        # each, not their whole history read and filtered afterwards. Its authors' recent
        # texts are read through their customers too (an author index cost every insert).
        Index("ix_mentions_customer_created", "customer_id", "created_at"),
        # Answered ones only (follow-ups): new mentions come unanswered and cost it nothing.
        Index("ix_mentions_customer_answered", "customer_id", "first_response_at",
              sqlite_where=text(ANSWERED_SQL), postgresql_where=text(ANSWERED_SQL)),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(30))
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    text: Mapped[str] = mapped_column(Text, default="")
    lang: Mapped[str | None] = mapped_column(String(10))
    sentiment: Mapped[float] = mapped_column(Float, default=0.0)
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="new")
    assignee: Mapped[str | None] = mapped_column(String(100))
    in_reply_to: Mapped[str | None] = mapped_column(String(200))
    thread: Mapped[str | None] = mapped_column(String(200))
    sla_policy: Mapped[str | None] = mapped_column(String(100))
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    at_risk_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_external_id: Mapped[str | None] = mapped_column(String(200))
    response_url: Mapped[str | None] = mapped_column(Text)
    # The SLA engine's bookkeeping: how many of the mention's alert moments (warnings,
    # breach, escalation) are handled, and when the next one is due (NULL: none pending).
    alerts_fired: Mapped[int] = mapped_column(Integer, default=0)
    next_alert_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A follow-up after a response runs on a new clock; this points at what it follows.
    follow_up_of: Mapped[int | None] = mapped_column(BigId)
    # Whose brand it is about: "ours" or a competitor's name (`listener.brands`).
    brand: Mapped[str] = mapped_column(String(50), default="ours", server_default="ours")
    # Counted in share of voice: someone's own words about the brand, not a brand's own
    # post and not noise. Rows older than the column count unless they were ignored.
    counted: Mapped[bool] = mapped_column(default=True, server_default=true())
    # An app-store review's stars (1-5); NULL for everything that is not a rated review.
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    # Text, author handle and name folded for the queue's search (`store.open_queue`);
    # NULL on mentions already settled when the column came (migration 0014).
    search_text: Mapped[str | None] = mapped_column(Text)


class MentionEvent(Base):
    """Append-only history (ingested, assigned, responded...): response times come from it."""

    __tablename__ = "mention_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mention_id: Mapped[int] = mapped_column(BigId, ForeignKey("mentions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SlaTally(Base):
    """How many settled mentions (no longer open, with a deadline) ended `met`, `missed` or
    `unanswered`, per channel. Kept by database triggers on `mentions` (migration 0012),
    so the SLA summary reads a few rows instead of counting the whole history."""

    __tablename__ = "sla_tallies"
    channel: Mapped[str] = mapped_column(String(30), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class RejectedItem(Base):
    """A malformed upstream item: recorded so nothing is silently lost, then skipped."""

    __tablename__ = "rejected_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxAlert(Base):
    """Durable alert queue: one row per mention per state change (dedupe_key is unique)."""

    __tablename__ = "alert_outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    mention_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("mentions.id"),
                                                   index=True)
    sink: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    delivered_in: Mapped[int | None] = mapped_column(Integer)


class SpikeState(Base):
    """One spike of negative mentions (about our brand, or about the competitor named in
    `brand`), open while `ended_at` is NULL: what lets the spike watcher alert once per
    spike, across restarts and replicas."""

    __tablename__ = "spike_states"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    peak_count: Mapped[int] = mapped_column(Integer, default=0)
    brand: Mapped[str | None] = mapped_column(String(50))  # a competitor's; NULL: ours


class User(Base):
    """A dashboard login. `agent_id` ties it to a configured agent ("my queue", claim)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    agent_id: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ToneTemplate(Base):
    """A reply template an admin edited in the UI; wins over the file of the same
    channel (or tone group), intent and language until reverted."""

    __tablename__ = "tone_templates"
    __table_args__ = (
        UniqueConstraint("channel", "intent", "lang", name="uq_tone_templates_channel"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(30))  # a channel, source kind or tone group
    intent: Mapped[str] = mapped_column(String(50))
    lang: Mapped[str] = mapped_column(String(5))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerContact(Base):
    """A call-centre call: part of the customer's timeline. `external_id` is the export's
    call id, or a hash of phone and time, so importing a file twice adds nothing; a call
    whose outcome promised a callback points at the open mention that tracks it."""

    __tablename__ = "customer_contacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    agent: Mapped[str | None] = mapped_column(String(100))
    topic: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str | None] = mapped_column(String(100))
    mention_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("mentions.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
