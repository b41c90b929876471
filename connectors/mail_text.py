"""An e-mail's own words: the body part decoded (plain text preferred, HTML turned into text),
then the quoted history and the signature cut off, so an agent reads what the customer
wrote this time, not the whole conversation again.

Pure functions over `email.message.EmailMessage`; the result is still hostile text, escaped
wherever it is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage, Message

from connectors.text import html_to_text

# Turkish mail is often sent without a charset, or labelled wrongly: after UTF-8 this is the
# likeliest reading of stray bytes (windows-1254 is a superset of iso-8859-9's letters).
FALLBACK_CHARSETS = ("utf-8", "cp1254")

# A reply's attribution line, which starts the quoted history:
#   On Mon, 23 Nov 2026 at 10:00, Ali <ali@example.com> wrote:
#   23 Kas 2026 Pzt 10:00 tarihinde Ali <ali@example.com> şunu yazdı:
#   Am 23.11.2026 um 10:00 schrieb Ali:   /   Le 23 nov. 2026 à 10:00, Ali a écrit :
ATTRIBUTION = re.compile(
    r"^(?:>\s*)?(?:on\b.{4,300}\bwrote\s*:"
    r"|.{4,300}\btarihinde\b.{0,300}\byazdı\s*:"
    r"|am\b.{4,300}\bschrieb\b.{0,300}:"
    r"|le\b.{4,300}\ba\s+écrit\s*:)\s*$",
    re.IGNORECASE,
)
SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:original message|orijinal ileti|özgün ileti|ursprüngliche nachricht)"
    r"\s*-{2,}|_{10,})\s*$",
    re.IGNORECASE,
)
# Outlook's quoted header block: From / Sent / To / Subject, in English or Turkish.
HEADER_FROM = re.compile(r"^\s*\*?(?:from|kimden|von|de)\s*:\*?\s+\S", re.IGNORECASE)
HEADER_NEXT = re.compile(
    r"^\s*\*?(?:sent|date|to|cc|subject|gönderildi|gönderilme|tarih|kime|bilgi|konu"
    r"|gesendet|an|betreff|envoyé|à|objet)\s*:\*?", re.IGNORECASE)
FORWARD_MARK = re.compile(
    r"-{3,}\s*(?:forwarded message|iletilen ileti|iletilmiş ileti|weitergeleitete nachricht)"
    r"|begin forwarded message|forwarded message follows",
    re.IGNORECASE,
)
SIGNATURE = re.compile(r"^--\s*$")
MOBILE_FOOTER = re.compile(
    r"^\s*(?:sent from my \S.{0,40}|get outlook for \S.{0,20}|von meinem \S.{0,40} gesendet"
    r"|.{0,40}(?:'umdan|'imden|'ımdan|'ümden|cihazımdan|telefonumdan) gönderildi"
    r"|(?:android|ios) için outlook.{0,20})\s*$",
    re.IGNORECASE,
)
QUOTE_SELECTORS = ("blockquote", ".gmail_quote", ".gmail_extra", ".yahoo_quoted",
                   ".moz-cite-prefix", "#appendonsend", "#divRplyFwdMsg")
SIGNATURE_SELECTORS = (".gmail_signature", ".moz-signature", "#Signature",
                       "[data-smartmail=gmail_signature]")
BLANK_RUNS = re.compile(r"\n{3,}")
REPLY_PREFIX = re.compile(r"^\s*(?:re|ynt|cvp|aw|sv|vs|odp|antw|ant|rif|r)\s*(?:\[\d+\])?\s*:\s*",
                          re.IGNORECASE)
FORWARD_PREFIX = re.compile(r"^\s*(?:fwd?|ilt|İlt|wg|rv|enc)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Body:
    text: str
    notes: tuple[str, ...] = ()


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """The text and, when the declared charset was unknown or wrong, a note saying so."""
    if charset:
        try:
            return data.decode(charset), None
        except LookupError:
            note = f"unknown charset {charset[:40]!r}"
        except UnicodeDecodeError:
            note = f"text is not valid {charset[:40]}"
    else:
        note = None
    for fallback in FALLBACK_CHARSETS:
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            continue
        return text, (f"{note}: read as {fallback}" if note else None)
    return data.decode("utf-8", "replace"), (note or "undecodable bytes") + ": replaced"


def repair(text: str) -> str:
    """Raw 8-bit header bytes come back from `email` as lone surrogates, which no database
    can store; read them as UTF-8, else windows-1254."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    return decode_bytes(raw, None)[0]


def part_text(part: Message) -> tuple[str, str | None]:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return "", None
    return decode_bytes(payload, part.get_content_charset())


def is_forward(subject: str, text: str) -> bool:
    return bool(FORWARD_PREFIX.match(subject) or FORWARD_MARK.search(text))


def body_of(message: EmailMessage, subject: str = "") -> Body:
    """Plain text when the sender gave one, else the HTML part as text; trimmed of quoted
    history and signature unless that would leave nothing (a bare forward keeps it all)."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return Body("")
    raw, note = part_text(part)
    notes = (note,) if note else ()
    forwarded = is_forward(subject, raw)
    if part.get_content_subtype() == "html":
        drop = SIGNATURE_SELECTORS if forwarded else QUOTE_SELECTORS + SIGNATURE_SELECTORS
        text = html_to_text(raw, drop=drop) or html_to_text(raw)
    else:
        text = raw.replace("\r\n", "\n").replace("\r", "\n")
    return Body(trim(text, forwarded), notes)


def trim(text: str, forwarded: bool = False) -> str:
    """Cut at the first sign of quoted history, drop `>` lines, cut the signature and a
    mobile footer. A forward keeps the forwarded message (it is the content)."""
    lines = [line.rstrip() for line in text.split("\n")]
    lines = lines[:_history_start(lines, forwarded)]
    lines = [line for line in lines if not line.lstrip().startswith(">")]
    for index, line in enumerate(lines):
        if SIGNATURE.match(line) and any(lines[:index]):
            lines = lines[:index]
            break
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and MOBILE_FOOTER.match(lines[-1]) and len(lines) > 1:
        lines.pop()
    trimmed = BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
    return trimmed or BLANK_RUNS.sub("\n\n", text).strip()


def _history_start(lines: list[str], forwarded: bool) -> int:
    for index, line in enumerate(lines):
        if _attribution(lines, index):
            return index
        if forwarded:
            continue
        if SEPARATOR.match(line) or (HEADER_FROM.match(line) and _header_block(lines, index)):
            return index
    return len(lines)


def _attribution(lines: list[str], index: int) -> bool:
    """The line starts an attribution, alone or wrapped onto the next line (Gmail wraps
    `On ..., Ali <ali@example.com>` / `wrote:`)."""
    here = lines[index].strip()
    if not here or here.startswith(">"):
        return False
    if ATTRIBUTION.match(here):
        return True
    after = lines[index + 1].strip() if index + 1 < len(lines) else ""
    return bool(after) and not ATTRIBUTION.match(after) and \
        bool(ATTRIBUTION.match(f"{here} {after}"))


def _header_block(lines: list[str], start: int) -> bool:
    """A quoted Outlook header: `From:` followed by at least two of Sent/To/Subject."""
    following = [line for line in lines[start + 1:start + 6] if line.strip()]
    return sum(1 for line in following if HEADER_NEXT.match(line)) >= 2


def reply_subject(subject: str) -> str:
    """`Re: <subject>` once, whatever the customer's client put there (Re:, YNT:, AW: ...)."""
    bare = subject.strip()
    while True:
        shorter = REPLY_PREFIX.sub("", bare, count=1)
        if shorter == bare:
            break
        bare = shorter
    return f"Re: {bare}" if bare else "Re: your message"
