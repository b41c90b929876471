"""One raw e-mail as the `imap` source needs it: who wrote it, when, its own words, where it
sits in a conversation (Message-ID / In-Reply-To / References) and its attachments' names.

Identifiers are what keeps a mailbox re-read (a UIDVALIDITY change) from duplicating
anything, so they depend only on the message itself: its Message-ID, or for the rare
message without one a hash of its headers and body. Both fit the 200-character columns.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from connectors.mail_text import body_of, repair

MAX_ID = 200
MSG_ID = re.compile(r"<([^<>\s]{1,990})>")
BARE_ID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
HASHED_FIELDS = ("From", "To", "Cc", "Date", "Subject")
MAX_LISTED = 10


class MailError(ValueError):
    """The message cannot be a mention (no sender address); the text says why."""


@dataclass(frozen=True)
class Attachment:
    name: str
    size: int

    def describe(self) -> str:
        return f"{self.name} ({human_size(self.size)})"


@dataclass
class Mail:
    external_id: str
    message_id: str | None  # as the headers gave it, for In-Reply-To when we answer
    sender: str  # the From address, lower-cased
    sender_name: str
    reply_to: str  # where an answer goes: Reply-To, else From
    reply_to_name: str
    subject: str
    sent_at: datetime | None
    text: str
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    automatic: str | None = None  # why it is an automatic message (out of office, bounce)
    notes: list[str] = field(default_factory=list)

    @property
    def starts_thread(self) -> bool:
        return self.in_reply_to is None and not self.references

    @property
    def thread(self) -> str:
        """The conversation's first message: References lists it first."""
        return stable_id(self.references[0]) if self.references else \
            stable_id(self.in_reply_to) if self.in_reply_to else self.external_id


def parse_mail(raw: bytes) -> Mail:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    sender_name, sender = mailbox(message, "From")
    if not sender:
        raise MailError("no From address")
    reply_to_name, reply_to = mailbox(message, "Reply-To")
    subject = " ".join(header(message, "Subject").split())
    message_id = first_id(header(message, "Message-ID"))
    notes: list[str] = []
    if message_id is None:
        notes.append("no Message-ID: its id is a hash of its headers")
    body = body_of(message, subject)
    notes += body.notes
    return Mail(
        external_id=stable_id(message_id) if message_id else content_id(message, raw),
        message_id=message_id,
        sender=sender,
        sender_name=sender_name,
        reply_to=reply_to or sender,
        reply_to_name=reply_to_name if reply_to else sender_name,
        subject=subject,
        sent_at=sent_at(header(message, "Date")),
        text=body.text,
        in_reply_to=first_id(header(message, "In-Reply-To")),
        references=all_ids(header(message, "References")),
        attachments=attachments(message),
        automatic=automatic(message),
        notes=notes,
    )


def header(message: EmailMessage, name: str) -> str:
    """A header as text; one the `email` package cannot read is read raw instead."""
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):
        values = [v for k, v in message.raw_items() if k.lower() == name.lower()]
        value = values[0] if values else None
    return repair(str(value)) if value is not None else ""


def mailbox(message: EmailMessage, name: str) -> tuple[str, str]:
    """(display name, lower-cased address) of the header's first mailbox with an `@`."""
    try:
        addresses = getattr(message.get(name), "addresses", None) or ()
    except (ValueError, TypeError, IndexError):
        addresses = ()
    for address in addresses:
        spec = repair(address.addr_spec).strip()
        if "@" in spec.strip("@") and not CONTROL.search(spec):
            return " ".join(repair(address.display_name).split())[:200], spec.lower()[:320]
    return first_address(header(message, name))


def first_address(value: str) -> tuple[str, str]:
    """(display name, lower-cased address) of the first mailbox that has an `@`."""
    for name, address in getaddresses([value]):
        address = address.strip()
        if "@" in address.strip("@") and not CONTROL.search(address):
            return " ".join(name.split())[:200], address.lower()[:320]
    return "", ""


def all_ids(value: str) -> list[str]:
    ids = [f"<{found}>" for found in MSG_ID.findall(value)]
    if not ids and BARE_ID.match(value.strip()):
        ids = [f"<{value.strip()}>"]
    return ids


def first_id(value: str) -> str | None:
    ids = all_ids(value)
    return ids[0] if ids else None


def stable_id(message_id: str) -> str:
    """A Message-ID as stored: itself, or when longer than the column its start and a hash
    (the same input always gives the same id, so replies still find their parent)."""
    if len(message_id) <= MAX_ID:
        return message_id
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:32]
    return f"{message_id[:MAX_ID - 34]}#{digest}>"


def content_id(message: EmailMessage, raw: bytes) -> str:
    """For a message without Message-ID: the same headers and body give the same id."""
    digest = hashlib.sha256()
    for name in HASHED_FIELDS:
        digest.update(f"{name}:{' '.join(header(message, name).split())}\n".encode())
    _, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    digest.update(body.rstrip())
    return f"hash:{digest.hexdigest()[:40]}"


def sent_at(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def automatic(message: EmailMessage) -> str | None:
    """Out-of-office answers and bounces (RFC 3834 `Auto-Submitted`, and the older
    headers some responders still send) are not a person writing."""
    submitted = header(message, "Auto-Submitted").strip().lower()
    if submitted and not submitted.startswith("no"):
        return f"Auto-Submitted: {submitted.split(';')[0][:40]}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if header(message, name).strip():
            return f"{name} header"
    if message.get_content_type() == "multipart/report":
        return "a delivery report (bounce)"
    return None


def attachments(message: EmailMessage) -> list[Attachment]:
    """Files attached, by name: listed for the agent, never stored. Images embedded in
    the HTML (a logo in a signature) are not attachments."""
    body = message.get_body(preferencelist=("plain", "html"))
    found = []
    for part in message.walk():
        if part.is_multipart() or part is body:
            continue
        disposition = part.get_content_disposition()
        name = _filename(part)
        embedded = disposition == "inline" and part.get("Content-ID") is not None
        if embedded or (disposition != "attachment" and not name):
            continue
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        found.append(Attachment(name or f"unnamed {part.get_content_type()}", size))
    return found


def _filename(part: EmailMessage) -> str:
    try:
        name = part.get_filename() or ""
    except (ValueError, TypeError, IndexError):
        name = ""
    if not name and part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0) if part.is_multipart() else None
        subject = header(inner, "Subject") if isinstance(inner, EmailMessage) else ""
        name = f"{subject or 'message'}.eml"
    return CONTROL.sub("", repair(name)).strip()[:120]


def attachment_line(found: list[Attachment]) -> str:
    names = [a.name for a in found[:MAX_LISTED]]
    more = f" (+{len(found) - MAX_LISTED} more)" if len(found) > MAX_LISTED else ""
    return "📎 " + ", ".join(names) + more


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"

