"""A short, blocking IMAP session (stdlib `imaplib`), run in a worker thread so the event
loop never waits on the mail server: connect, log in, examine a folder read-only, search
and fetch by UID, log out.

Folders are opened with EXAMINE and bodies fetched with BODY.PEEK, so reading the mailbox
never marks anything as read for the people who also work in it. Every failure becomes a
`SourceError` (retried with back-off) or `AuthFailed` (refused credentials); messages
never carry the password.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from types import TracebackType
from typing import Literal

from connectors.base import AuthFailed, SourceError

Tls = Literal["ssl", "starttls", "none"]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FETCH_CHUNK = 25
UID = re.compile(rb"\bUID (\d+)")
SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
INTERNALDATE = re.compile(
    rb'INTERNALDATE "\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([-+])(\d\d)(\d\d)"')


@dataclass(frozen=True)
class Fetched:
    uid: int
    arrived_at: datetime | None  # INTERNALDATE: when the server received it
    size: int
    raw: bytes


@dataclass(frozen=True)
class FolderState:
    validity: int
    next_uid: int | None


def folder_name(name: str) -> str:
    """A folder name as IMAP wants it on the wire: modified UTF-7 (RFC 3501 §5.1.3), so
    `Gönderilmiş Öğeler` works, inside quotes."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return quoted("".join(out))


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def search_date(day: date) -> str:
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


def server_words(exc: BaseException) -> str:
    """What the server said, as text (imaplib gives bytes reprs)."""
    text = str(exc.args[0] if exc.args else exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return text.strip()[:300]


class ImapSession:
    """`with ImapSession(...) as imap:` logs in on entry and out on exit."""

    def __init__(self, host: str, port: int, tls: Tls, username: str, password: str,
                 timeout: float, context: ssl.SSLContext | None = None):
        self.host, self.port, self.tls = host, port, tls
        self.username, self.password = username, password
        self.timeout = timeout
        self.context = context or ssl.create_default_context()
        self.conn: imaplib.IMAP4 | None = None

    @property
    def where(self) -> str:
        return f"IMAP server {self.host}:{self.port}"

    def __enter__(self) -> ImapSession:
        try:
            self.conn = self._connect()
            self._login(self.conn)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._close()

    def _connect(self) -> imaplib.IMAP4:
        try:
            if self.tls == "ssl":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=self.context, timeout=self.timeout)
            else:
                conn = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
                if self.tls == "starttls":
                    if "STARTTLS" not in conn.capabilities:
                        conn.shutdown()
                        raise SourceError(f"{self.where} does not offer STARTTLS; "
                                          "use tls: ssl (port 993)")
                    conn.starttls(ssl_context=self.context)
        except ssl.SSLCertVerificationError as exc:
            raise SourceError(f"{self.where}: its TLS certificate is not trusted "
                              f"({exc.verify_message}); set ca_file for a private CA") from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise SourceError(f"{self.where} could not be reached: "
                              f"{server_words(exc) or type(exc).__name__}") from None
        return conn

    def _login(self, conn: imaplib.IMAP4) -> None:
        try:
            if (self.username + self.password).isascii():
                conn.login(quoted(self.username), self.password)
            else:  # LOGIN takes ASCII only; SASL PLAIN carries UTF-8
                secret = f"\0{self.username}\0{self.password}".encode()
                conn.authenticate("PLAIN", lambda _: secret)
        except imaplib.IMAP4.abort as exc:
            raise SourceError(f"{self.where} dropped the connection while logging in: "
                              f"{server_words(exc)}") from None
        except imaplib.IMAP4.error as exc:
            raise AuthFailed(f"{self.where} refused the login of {self.username!r} (check "
                             f"username and password): {server_words(exc)}") from None
        except OSError as exc:
            raise SourceError(f"{self.where} failed while logging in: {exc}") from None

    def _close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()

    def _uid(self, what: str, command: str, *args: str) -> list[object]:
        assert self.conn is not None
        try:
            status, data = self.conn.uid(command, *args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise SourceError(f"{self.where}: {what} failed: {server_words(exc)}") from None
        if status != "OK":
            raise SourceError(f"{self.where}: {what} failed: {_text(data)}")
        return list(data)

    def examine(self, folder: str) -> FolderState:
        """Open the folder read-only; its UIDVALIDITY and UIDNEXT."""
        assert self.conn is not None
        try:
            status, data = self.conn.select(folder_name(folder), readonly=True)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise SourceError(f"{self.where}: folder {folder!r} could not be opened: "
                              f"{server_words(exc)}") from None
        if status != "OK":
            raise SourceError(f"{self.where}: folder {folder!r} could not be opened "
                              f"(does it exist? check the folder name): "
                              f"{_text(data)}")
        validity = _number(self.conn.response("UIDVALIDITY")[1])
        if validity is None:
            raise SourceError(f"{self.where}: folder {folder!r} has no UIDVALIDITY")
        return FolderState(validity, _number(self.conn.response("UIDNEXT")[1]))

    def uids_after(self, uid: int) -> list[int]:
        found = self._search(f"UID {uid + 1}:*")
        return [u for u in found if u > uid]  # `n:*` always includes the newest message

    def highest_uid(self) -> int:
        return max(self._search("UID *"), default=0)

    def uids_since(self, day: date) -> list[int]:
        return self._search(f"SINCE {search_date(day)}")

    def uids_from(self, address: str) -> list[int]:
        return self._search(f"FROM {quoted(address)}")

    def uids_with_message_id(self, message_id: str) -> list[int]:
        return self._search(f"HEADER Message-ID {quoted(message_id)}")

    def _search(self, criteria: str) -> list[int]:
        data = self._uid("search", "SEARCH", criteria)
        words = b" ".join(d for d in data if isinstance(d, bytes)).split()
        return sorted({int(w) for w in words if w.isdigit()})

    def fetch(self, uids: list[int], max_bytes: int) -> list[Fetched]:
        """The messages (their first `max_bytes` each), oldest UID first."""
        fetched: dict[int, Fetched] = {}
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = ",".join(str(u) for u in uids[start:start + FETCH_CHUNK])
            items = f"(UID INTERNALDATE RFC822.SIZE BODY.PEEK[]<0.{max_bytes}>)"
            for entry in self._uid("fetch", "FETCH", chunk, items):
                if not isinstance(entry, tuple) or len(entry) < 2:
                    continue  # a closing paren, or an unasked FLAGS update
                meta, raw = entry[0], entry[1]
                uid = UID.search(meta)
                if uid is None or not isinstance(raw, bytes):
                    continue
                size = SIZE.search(meta)
                fetched[int(uid.group(1))] = Fetched(
                    int(uid.group(1)), arrival(meta), int(size.group(1)) if size else len(raw),
                    raw)
        return [fetched[u] for u in sorted(fetched)]


def arrival(meta: bytes) -> datetime | None:
    found = INTERNALDATE.search(meta)
    if found is None:
        return None
    day, month, year, hour, minute, second, sign, off_h, off_m = found.groups()
    try:
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == b"-" else 1)
        moment = datetime(int(year), MONTHS.index(month.decode().title()) + 1, int(day),
                          int(hour), int(minute), int(second), tzinfo=timezone(offset))
    except ValueError:
        return None
    return moment.astimezone(UTC)


def _number(data: list[object]) -> int | None:
    for value in data:
        if isinstance(value, bytes) and value.strip().isdigit():
            return int(value)
    return None


def _text(data: list[object]) -> str:
    return b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")[:300]
