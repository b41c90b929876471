"""A call-centre contact, from an export line or the API, into the customer's timeline.

Every call is history on the caller's timeline. A call whose outcome promised a callback
is also an open mention on channel `phone` (source `calls`, the summary as its text), put
through the same pipeline as a tweet: linked to the customer, routed to an agent who
has the `phone` channel and given a deadline by the SLA policy that matches it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from connectors.base import RawAuthor, RawItem
from listener.identities import BadIdentity, phone_e164
from listener.models import CustomerContact, Mention
from listener.pipeline.ingest import SourceInfo
from listener.pipeline.noise import casefold
from listener.services import Services
from listener.store import contacts
from listener.store.actions import Conflict
from listener.store.contacts import PHONE_CHANNEL, Call
from sla.durations import parse_duration

CALLS_SOURCE = "calls"
FIELDS = ("call_id", "phone", "name", "started_at", "duration", "agent", "topic", "summary",
          "outcome")
# Outcomes that promise the customer a call back, compared case- and accent-insensitively
# with "_" and "-" read as spaces: "Callback_Promised" and "GERİ ARAMA" both count.
CALLBACK_OUTCOMES = frozenset({
    "callback", "call back", "callback promised", "callback requested", "call back promised",
    "geri arama", "geri aranacak", "geri arama sozu", "geri donulecek",
    "geri donus yapilacak",
})
LIMITS = {"call_id": 190, "phone": 40, "name": 200, "agent": 100, "topic": 200,
          "summary": 10_000, "outcome": 100}
DAY_FIRST = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")
CLOCK = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})")


class CallError(ValueError):
    """A call that cannot be recorded; the message starts with the field."""


def promises_callback(outcome: str | None) -> bool:
    text = casefold(re.sub(r"[_-]+", " ", outcome or ""))
    return text in CALLBACK_OUTCOMES


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and key == "call_id":
        value = str(value)
    if not isinstance(value, str):
        raise CallError(f"{key} must be text")
    value = value.strip()
    if len(value) > LIMITS[key]:
        raise CallError(f"{key} is longer than {LIMITS[key]} characters")
    if "\x00" in value:
        raise CallError(f"{key} cannot contain NUL characters")
    return value or None


def parse_started_at(value: Any, zone: ZoneInfo) -> datetime:
    """ISO 8601, or 23.11.2026 09:15 as Turkish exports write it; a time without an offset
    is read in the configured time zone, as the call centre's clock shows it."""
    if not isinstance(value, str) or not value.strip():
        raise CallError("started_at is required (ISO 8601, e.g. 2026-11-23T09:15:00+03:00)")
    text = value.strip()
    try:
        found = DAY_FIRST.fullmatch(text)
        if found:
            day, month, year, hour, minute, second = found.groups()
            moment = datetime(int(year), int(month), int(day), int(hour), int(minute),
                              int(second or 0))
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CallError(f"started_at is not a time: {text[:40]!r}; use ISO 8601, e.g. "
                        "2026-11-23T09:15:00+03:00 or 2026-11-23 09:15") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def parse_call_duration(value: Any) -> int | None:
    """Seconds: 272, "272", "4:32", "1:04:32" or "4m32s"."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds: int | None = value
    elif isinstance(value, str):
        text = value.strip()
        found = CLOCK.fullmatch(text)
        if text.isascii() and text.isdigit():
            seconds = int(text)
        elif found:
            hours, minutes, secs = (int(part or 0) for part in found.groups())
            seconds = hours * 3600 + minutes * 60 + secs if secs < 60 else None
        else:
            try:
                seconds = int(parse_duration(text).total_seconds()) if text else None
            except ValueError:
                seconds = None
    else:
        seconds = None
    if seconds is None or not 0 <= seconds <= 7 * 24 * 3600:
        raise CallError(f"duration is not a call length: {str(value)[:40]!r}; give seconds "
                        "(272), minutes:seconds (4:32) or 4m32s")
    return seconds


def call_identity(phone: str | None, started_at: datetime) -> str:
    """Without a call id, the same number at the same moment is the same call."""
    moment = started_at.astimezone(UTC).isoformat()
    return "sha256:" + hashlib.sha256(f"{phone or ''}|{moment}".encode()).hexdigest()[:40]


def to_call(row: dict[str, Any], region: str, zone: ZoneInfo,
            default_start: datetime | None = None) -> Call:
    """One export line or API body → a checked call (the phone, when given, in E.164).
    `default_start` stands in for a missing time: the API's "now", a call just taken."""
    raw_phone = _text(row, "phone")
    phone = None
    if raw_phone:
        try:
            phone = phone_e164(raw_phone, region)
        except BadIdentity as exc:
            raise CallError(f"phone: {exc}") from None
    if row.get("started_at") in (None, "") and default_start is not None:
        started_at = default_start
    else:
        started_at = parse_started_at(row.get("started_at"), zone)
    outcome = _text(row, "outcome")
    return Call(
        external_id=_text(row, "call_id") or call_identity(phone, started_at),
        started_at=started_at, phone=phone, name=_text(row, "name") or "",
        duration_seconds=parse_call_duration(row.get("duration")),
        agent=_text(row, "agent"), topic=_text(row, "topic"),
        summary=_text(row, "summary") or "", outcome=outcome,
        callback=promises_callback(outcome))


@dataclass(frozen=True)
class Recorded:
    contact: CustomerContact
    created: bool
    queued: bool = False  # its callback became an open mention


async def record_call(services: Services, call: Call, *, customer_id: int | None = None,
                      actor: str = "import", queue_callback: bool = True) -> Recorded:
    """Store the call once (the same call again changes nothing) and queue its callback.

    The caller is linked and committed first, so the pipeline puts the callback mention
    on that customer; the call's row is written last, pointing at the mention, so an
    interrupted run, run again, finishes the job instead of doubling it.
    """
    now = services.clock.now()
    region = services.config.customers.default_region
    queue = call.callback and queue_callback and call.phone is not None
    async with services.store.write() as session:
        known = await contacts.find(session, call.external_id)
        if known is not None:
            if customer_id is not None and known.customer_id != customer_id:
                raise Conflict(f"call {call.external_id} is already recorded for customer "
                               f"{known.customer_id}")
            return Recorded(known, created=False)
        caller = await contacts.link_caller(session, call, customer_id, actor, now, region)
        if not queue:
            contact, created = await contacts.add(session, call, caller, None, now)
            return Recorded(contact, created)
    mention_id = await _queue_callback(services, call)
    async with services.store.write() as session:
        caller = await contacts.link_caller(session, call, customer_id, actor, now, region)
        contact, created = await contacts.add(session, call, caller, mention_id, now)
    return Recorded(contact, created, queued=created)


def callback_text(call: Call) -> str:
    if call.summary:
        return call.summary
    return f"Callback promised: {call.topic}" if call.topic else "Callback promised"


async def _queue_callback(services: Services, call: Call) -> int:
    assert call.phone is not None
    external_id = f"call:{call.external_id}"
    taken_by = f" taken by {call.agent}" if call.agent else ""
    item = RawItem(
        external_id=external_id, text=callback_text(call), created_at=call.started_at,
        channel=PHONE_CHANNEL, author=RawAuthor(handle=call.phone, name=call.name,
                                                phone=call.phone),
        note=f"callback promised on call {call.external_id}{taken_by}")
    calls = SourceInfo(CALLS_SOURCE, CALLS_SOURCE, PHONE_CHANNEL, screened=False)
    await services.pipeline.ingest(calls, [item])
    async with services.store.read() as session:
        mention_id = await session.scalar(select(Mention.id).where(
            Mention.source == CALLS_SOURCE, Mention.external_id == external_id))
    assert mention_id is not None
    return mention_id


def is_stale(call: Call, now: datetime, backfill: timedelta) -> bool:
    """A callback promised longer ago than `backfill` is history: the call centre has
    long dealt with it, and queueing it would only raise breach alerts."""
    return call.started_at < now - backfill
