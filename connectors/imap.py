"""Support e-mail: a mailbox read over IMAP, each message a mention on channel `email`, and,
with `send_replies`, answers sent over SMTP as replies in the customer's thread.

Reading: the folder is examined read-only (nothing is marked read) and followed by UID;
the cursor keeps each folder's UIDVALIDITY and last UID. When UIDVALIDITY changes (the
mailbox was rebuilt or migrated, so old UIDs mean nothing) the folder is read again from
a day before the newest message already read; ids come from the messages themselves
(Message-ID, else a hash of headers and body), so nothing is stored twice. The first
poll reads `backfill` back.

A message becomes a mention with its own words only: plain text preferred, HTML turned
into text, quoted history and signature cut (see `mail_text`); a new conversation starts
with its subject; attachments are listed by name, never stored. The `From` address is
the author's e-mail, which links the customer to whoever used that address anywhere
else. `thread` is the conversation's first Message-ID (References / In-Reply-To).

The brand's own messages stop the customer's clock like a reply on any platform: those
from `from_address`, `brand_addresses` (or `brand_accounts.email`), and every reply in
`sent_folder` when one is set. Out-of-office answers and bounces are kept as rejected
items, not queued.

imaplib is blocking, so each poll runs in a worker thread with socket timeouts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from connectors.base import (
    Batch,
    PolledSourceConfig,
    RawAuthor,
    RawItem,
    Rejected,
    ReplyRefused,
    ReplyTarget,
    SentReply,
    SourceError,
    secret_value,
)
from connectors.imap_client import Fetched, ImapSession, Tls
from connectors.mail_parse import (
    MAX_ID,
    Mail,
    attachment_line,
    human_size,
    parse_mail,
    stable_id,
)
from connectors.mail_send import SmtpServer, SmtpTls, compose_reply, send
from listener.config_fields import StrList

MAX_BYTES = 2 * 1024 * 1024  # read of each message; attachments are listed, never kept
CLOCK_SLACK = timedelta(minutes=5)
REPLY_CANDIDATES = 200
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() in LOOPBACK_NAMES


def _address(value: str, key: str) -> str:
    value = value.strip()
    if "@" not in value.strip("@") or any(ch.isspace() for ch in value):
        raise ValueError(f"{key} must be an e-mail address, e.g. support@example.com")
    return value.lower()


class ImapSource(PolledSourceConfig):
    """A support mailbox. `tls: none` (and `smtp_tls: none` with a password) is only
    accepted for a server on this machine: a password never crosses a network in clear."""

    default_channel: ClassVar[str | None] = "email"

    kind: Literal["imap"]
    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535)
    tls: Tls = "ssl"
    username: str = Field(min_length=1)
    password: SecretStr
    folder: str = Field("INBOX", min_length=1)
    sent_folder: str | None = Field(None, min_length=1)
    brand_addresses: StrList = []
    ca_file: str | None = None
    max_messages: int = Field(200, ge=1, le=5000)
    send_replies: bool = False
    smtp_host: str | None = None
    smtp_port: int | None = Field(None, ge=1, le=65535)
    smtp_tls: SmtpTls = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    from_address: str | None = None

    @field_validator("password")
    @classmethod
    def _password_when_enabled(cls, password: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("enabled", True) and not password.get_secret_value():
            raise ValueError("an enabled imap source needs the mailbox password "
                             "(set it via ${ENV_VAR})")
        return password

    @field_validator("brand_addresses")
    @classmethod
    def _brand_addresses(cls, values: list[str]) -> list[str]:
        """An address, or `@example.com` for everyone at that domain."""
        return [v.strip().lower() if v.strip().startswith("@") and "." in v
                else _address(v, "brand_addresses") for v in values]

    @field_validator("from_address")
    @classmethod
    def _from_address(cls, value: str | None) -> str | None:
        """`support@example.com`, or with the name customers see:
        `Acme Support <support@example.com>`."""
        if not value or not value.strip():
            return None
        name, address = parseaddr(value)
        try:
            Address(name, addr_spec=_address(address, "from_address"))
        except (ValueError, HeaderParseError) as exc:
            raise ValueError(f"from_address is not a usable address: {exc}") from None
        return value.strip()

    @field_validator("smtp_host", "smtp_username", "ca_file")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _no_clear_passwords(self) -> ImapSource:
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError("tls: none sends the mailbox password unencrypted; it is only "
                             "accepted for a server on this machine (127.0.0.1, ::1, "
                             "localhost). Use tls: ssl or starttls")
        if self.smtp_tls == "none" and self.smtp_host and not is_loopback(self.smtp_host) \
                and self.smtp_secret:
            raise ValueError("smtp_tls: none would send the SMTP password unencrypted; it is "
                             "only accepted for a relay on this machine. Use smtp_tls: "
                             "starttls or tls")
        return self

    @property
    def imap_port(self) -> int:
        return self.port or (993 if self.tls == "ssl" else 143)

    @property
    def smtp_secret(self) -> str:
        return secret_value(self.smtp_password) or secret_value(self.password)

    @property
    def sender(self) -> Address | None:
        """Replies come from `from_address`, else the mailbox's own login when it is one."""
        if self.from_address:
            name, address = parseaddr(self.from_address)
            return Address(name, addr_spec=address.lower())
        try:
            return Address(addr_spec=_address(self.username, "username"))
        except (ValueError, HeaderParseError):
            return None


@dataclass
class Mark:
    """Where one folder was read up to."""

    validity: int
    uid: int
    seen: datetime | None = None  # arrival of the newest message read

    def as_json(self) -> dict[str, Any]:
        return {"validity": self.validity, "uid": self.uid,
                **({"seen": self.seen.isoformat()} if self.seen else {})}


def read_marks(cursor: str | None) -> dict[str, Mark]:
    """Anything unreadable starts afresh like a first poll (duplicates are harmless)."""
    try:
        data = json.loads(cursor) if cursor else {}
    except json.JSONDecodeError:
        return {}
    marks: dict[str, Mark] = {}
    for folder, mark in (data.items() if isinstance(data, dict) else ()):
        if not isinstance(mark, dict):
            continue
        validity, uid, seen = mark.get("validity"), mark.get("uid"), mark.get("seen")
        if type(validity) is not int or type(uid) is not int:
            continue
        try:
            moment = datetime.fromisoformat(seen) if isinstance(seen, str) else None
        except ValueError:
            moment = None
        marks[folder] = Mark(validity, uid, moment)
    return marks


def write_marks(marks: dict[str, Mark]) -> str | None:
    return json.dumps({k: m.as_json() for k, m in marks.items()}, sort_keys=True) \
        if marks else None


class ImapConnector:
    kind: ClassVar[str] = "imap"
    Config: ClassVar[type[PolledSourceConfig]] = ImapSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = None

    def __init__(self, config: ImapSource):
        self.config = config
        try:
            self.tls_context = ssl.create_default_context(cafile=config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"source {config.id!r}: ca_file {config.ca_file!r} cannot be "
                             f"read: {exc}") from None
        self.brand: set[str] = set(config.brand_addresses)
        if config.sender:
            self.brand.add(config.sender.addr_spec)

    @classmethod
    def from_config(cls, source: Any) -> ImapConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"ImapConnector({self.config.id!r}, {self.config.host!r}, " \
               f"{self.config.folder!r})"

    def watch_brand(self, handles: list[str]) -> None:
        """`brand_accounts.email` (or `.imap`) addresses count as the brand's too."""
        self.brand |= {h.strip().lower() for h in handles if "@" in h}

    def is_brand(self, address: str) -> bool:
        address = address.lower()
        return address in self.brand or f"@{address.rsplit('@', 1)[-1]}" in self.brand

    def _session(self) -> ImapSession:
        config = self.config
        return ImapSession(config.host, config.imap_port, config.tls, config.username,
                           secret_value(config.password), config.timeout.total_seconds(),
                           self.tls_context)

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        return await asyncio.to_thread(self._poll, read_marks(cursor), now)

    def _poll(self, marks: dict[str, Mark], now: datetime) -> Batch:
        batch = Batch()
        folders = [(self.config.folder, False)]
        if self.config.sent_folder and self.config.sent_folder != self.config.folder:
            folders.append((self.config.sent_folder, True))
        kept = {}
        seen_ids: set[str] = set()
        with self._session() as imap:
            for folder, sent in folders:
                kept[folder] = self._read_folder(imap, folder, sent, marks.get(folder), now,
                                                 batch, seen_ids)
        batch.cursor = write_marks(kept)
        return batch

    def _read_folder(self, imap: ImapSession, folder: str, sent: bool, mark: Mark | None,
                     now: datetime, batch: Batch, seen_ids: set[str]) -> Mark:
        state = imap.examine(folder)
        if mark is not None and mark.validity == state.validity:
            uids = imap.uids_after(mark.uid)
        else:
            # First poll: back to the backfill window. A new UIDVALIDITY: again from a day
            # before the newest message read (SINCE is a date in the server's zone).
            since = mark.seen if mark is not None and mark.seen else now - self.config.backfill
            uids = imap.uids_since((since - timedelta(days=1)).date())
        taken = uids[:self.config.max_messages]
        fetched = imap.fetch(taken, MAX_BYTES)
        for message in fetched:
            self._take(message, sent, now, batch, seen_ids)
        if taken:
            newest = max((m.arrived_at for m in fetched if m.arrived_at), default=None)
            seen = max((d for d in (newest, mark.seen if mark else None) if d), default=None)
            return Mark(state.validity, max(taken), seen)
        if mark is not None and mark.validity == state.validity:
            return mark
        top = state.next_uid - 1 if state.next_uid else imap.highest_uid()
        return Mark(state.validity, top, mark.seen if mark else None)

    def _take(self, fetched: Fetched, sent: bool, now: datetime, batch: Batch,
              seen_ids: set[str]) -> None:
        try:
            mail = parse_mail(fetched.raw)
        except Exception as exc:  # one unreadable message must not stop the mailbox
            batch.rejected.append(Rejected(f"unreadable e-mail: {exc}"[:300],
                                           _snippet(fetched.raw)))
            return
        if mail.automatic:
            batch.rejected.append(Rejected(
                f"automatic e-mail ({mail.automatic}), not written by a person",
                _snippet(fetched.raw), mail.external_id))
            return
        if (sent and mail.starts_thread) or mail.external_id in seen_ids:
            return  # a Sent message answering nobody; or one already taken from a folder
        seen_ids.add(mail.external_id)
        batch.items.append(self._item(mail, fetched, sent or self.is_brand(mail.sender), now))

    def _item(self, mail: Mail, fetched: Fetched, by_brand: bool, now: datetime) -> RawItem:
        notes = list(mail.notes)
        created_at = self._created_at(mail, fetched, now, notes)
        text = mail.text
        if mail.starts_thread and mail.subject:
            text = f"{mail.subject}\n\n{text}".strip()
        if mail.attachments:
            text = f"{text}\n\n{attachment_line(mail.attachments)}".strip()
            notes.append("attachments not stored: " +
                         ", ".join(a.describe() for a in mail.attachments))
        if fetched.size > MAX_BYTES:
            notes.append(f"only the first {human_size(MAX_BYTES)} of this "
                         f"{human_size(fetched.size)} e-mail was read; attachments after "
                         "that are not listed")
        return RawItem(
            external_id=mail.external_id,
            text=text,
            created_at=created_at,
            channel=self.config.channel or "email",
            author=RawAuthor(mail.sender, mail.sender_name, email=mail.sender),
            in_reply_to=_stable(mail.in_reply_to),
            thread=mail.thread,
            note="; ".join(notes) or None,
            by_brand=by_brand,
        )

    @staticmethod
    def _created_at(mail: Mail, fetched: Fetched, now: datetime, notes: list[str]) -> datetime:
        """The Date header, unless it is later than the server's arrival time (a sender's
        clock cannot push a deadline out); arrival when Date is missing."""
        sent, arrived = mail.sent_at, fetched.arrived_at
        if sent is not None and (arrived is None or sent <= arrived + CLOCK_SLACK):
            return sent
        if arrived is not None:
            notes.append("no readable Date header: arrival time used" if sent is None
                         else "Date header later than arrival: arrival time used")
            return arrived
        notes.append("no date: fetch time used")
        return now.astimezone(UTC)

    def missing_reply_credentials(self) -> list[str]:
        config = self.config
        missing = [] if config.smtp_host else ["smtp_host"]
        return missing + ([] if config.sender else ["from_address"])

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        """An e-mail to the original's Reply-To (else From), threaded under it. The
        original is read again from the folder for its subject and References."""
        try:
            original = await asyncio.to_thread(self._original, target)
        except SourceError as exc:
            raise ReplyRefused(502, f"the original e-mail could not be read to thread the "
                               f"reply: {exc}; nothing sent") from None
        if original is None:
            raise ReplyRefused(404, f"the e-mail {target.external_id} is no longer in folder "
                               f"{self.config.folder!r} (moved or deleted?), so the reply "
                               "cannot be threaded; nothing sent: answer it from the "
                               "mailbox")
        sender = self.config.sender
        if sender is None:
            raise ReplyRefused(409, "set from_address to send replies; nothing sent")
        try:
            message = compose_reply(original, text, sender, datetime.now(UTC))
        except (ValueError, TypeError) as exc:
            raise ReplyRefused(422, f"the original e-mail's headers cannot be used for a "
                               f"reply ({exc}); nothing sent") from None
        await send(self._smtp(), message)
        return SentReply(str(message["Message-ID"]), None)

    def _original(self, target: ReplyTarget) -> Mail | None:
        """The message the mention came from: found by its Message-ID, or for a hashed id
        among the sender's messages, and checked to give the same id."""
        wanted = target.external_id
        with self._session() as imap:
            imap.examine(self.config.folder)
            if wanted.startswith("<"):
                uids = imap.uids_with_message_id(wanted[1:MAX_ID - 35].rstrip(">"))
            else:
                uids = imap.uids_from(target.author_handle) if target.author_handle else []
            for fetched in reversed(imap.fetch(uids[-REPLY_CANDIDATES:], MAX_BYTES)):
                try:
                    mail = parse_mail(fetched.raw)
                except Exception:  # an unreadable message is not the one wanted
                    continue
                if mail.external_id == wanted:
                    return mail
        return None

    def _smtp(self) -> SmtpServer:
        config = self.config
        default_port = {"tls": 465, "starttls": 587, "none": 25}[config.smtp_tls]
        return SmtpServer(config.smtp_host or "", config.smtp_port or default_port,
                          config.smtp_tls, config.smtp_username or config.username,
                          config.smtp_secret or None, config.timeout.total_seconds(),
                          self.tls_context)

    async def close(self) -> None:
        """Each poll opens and closes its own connection: nothing is held between polls."""


def _stable(message_id: str | None) -> str | None:
    return stable_id(message_id) if message_id else None


def _snippet(raw: bytes) -> str:
    return raw[:2000].decode("utf-8", "replace")
