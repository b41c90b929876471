"""Rows → the JSON shapes of SPEC §4. Times are ISO 8601 with offset (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from listener.humanize import time_left
from listener.models import (
    Agent,
    Author,
    Customer,
    CustomerIdentity,
    CustomerLink,
    CustomerNote,
    Mention,
)
from listener.store.customers import CustomerDetail
from sla.policy import sla_state


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def author_json(author: Author | None) -> dict[str, Any] | None:
    if author is None:
        return None
    return {
        "handle": author.handle,
        "name": author.name,
        "followers": author.followers,
        "channel": author.channel,
    }


def sla_json(mention: Mention, now: datetime) -> dict[str, Any] | None:
    if mention.deadline_at is None and mention.first_response_at is None:
        return None
    response_seconds = None
    if mention.first_response_at is not None:
        response_seconds = int((mention.first_response_at - mention.created_at).total_seconds())
    return {
        "policy": mention.sla_policy,
        "deadline_at": iso(mention.deadline_at),
        "at_risk_at": iso(mention.at_risk_at),
        "state": sla_state(mention.deadline_at, mention.at_risk_at, mention.first_response_at, now),
        "first_response_at": iso(mention.first_response_at),
        "response_seconds": response_seconds,
        "time_left": time_left(mention.deadline_at, now, mention.first_response_at),
    }


def mention_json(mention: Mention, author: Author | None, now: datetime) -> dict[str, Any]:
    return {
        "id": mention.id,
        "source": mention.source,
        "channel": mention.channel,
        "external_id": mention.external_id,
        "url": mention.url,
        "author": author_json(author),
        "customer_id": mention.customer_id,
        "text": mention.text,
        "lang": mention.lang,
        "sentiment": mention.sentiment,
        "priority": mention.priority,
        "created_at": iso(mention.created_at),
        "ingested_at": iso(mention.ingested_at),
        "status": mention.status,
        "assignee": mention.assignee,
        "thread": mention.thread,
        "follow_up_of": mention.follow_up_of,
        "brand": mention.brand,
        "rating": mention.rating,
        "response": {"external_id": mention.response_external_id, "url": mention.response_url}
        if mention.response_external_id or mention.response_url else None,
        "sla": sla_json(mention, now),
    }


def customer_json(detail: CustomerDetail, now: datetime) -> dict[str, Any]:
    """A customer with identities, accounts, the latest mentions (`history`) and the first
    page of their cross-channel timeline."""
    customer = detail.customer
    return {
        **customer_summary_json(customer),
        "identities": [identity_json(i) for i in detail.identities],
        "accounts": [author_json(a) for a in detail.authors],
        "history": [
            {
                "id": m.id,
                "channel": m.channel,
                "source": m.source,
                "text": m.text,
                "created_at": iso(m.created_at),
                "status": m.status,
                "url": m.url,
                "sla_state": sla_state(m.deadline_at, m.at_risk_at, m.first_response_at, now),
            }
            for m in detail.history
        ],
        "timeline": [{**item, "at": iso(item["at"])} for item in detail.timeline],
        "next_cursor": detail.next_cursor,
    }


def customer_summary_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.display_name,
        "email": customer.email,
        "segment": customer.segment,
        "external_id": customer.external_id,
        "lifetime_value": customer.lifetime_value,
        "merged_into": customer.merged_into,
    }


def identity_json(identity: CustomerIdentity) -> dict[str, Any]:
    return {
        "id": identity.id,
        "kind": identity.kind,
        "channel": identity.channel or None,
        "value": identity.value,
    }


def link_json(link: CustomerLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "action": link.action,
        "customer_id": link.customer_id,
        "other_customer_id": link.other_customer_id,
        "identity": link.identity,
        "actor": link.actor,
        "at": iso(link.at),
        "undone_at": iso(link.undone_at),
        "moved": {key: value for key, value in (link.undo or {}).items()
                  if key in ("identities", "authors", "mentions", "notes", "contacts")},
    }


def note_json(note: CustomerNote) -> dict[str, Any]:
    return {"id": note.id, "kind": note.kind, "text": note.text, "author": note.author,
            "at": iso(note.at)}


def agent_json(agent: Agent, open_count: int) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "channels": agent.channels,
        "languages": agent.languages,
        "max_open": agent.max_open,
        "shift": agent.shift,
        "status": agent.status,
        "open": open_count,
    }
