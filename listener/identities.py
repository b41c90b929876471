"""Normalising what identifies a customer, so the same person written two ways is one value.

Pure functions: e-mail lower-cased, handles without "@" and lower-cased (platform handles
are case-insensitive), phones in E.164 read with a default region for numbers written
without a country code. A display name is never an identity: two people share names.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

KINDS = ("handle", "email", "phone", "crm")


class BadIdentity(ValueError):
    """A value that cannot identify anyone (an unparseable phone, an e-mail without @)."""


def normalise(kind: str, value: str, channel: str | None = None,
              region: str = "TR") -> tuple[str, str, str]:
    """(kind, channel, value) as stored; channel is "" for everything but handles."""
    value = (value or "").strip()
    if kind not in KINDS:
        raise BadIdentity(f"kind must be one of {', '.join(KINDS)}")
    if not value:
        raise BadIdentity(f"{kind} is empty")
    if kind == "handle":
        if not channel:
            raise BadIdentity("a handle needs its channel, e.g. twitter:@ali")
        return kind, channel.strip().lower(), value.lstrip("@").lower()
    if kind == "email":
        if "@" not in value.strip("@"):
            raise BadIdentity(f"not an e-mail address: {value[:80]!r}")
        return kind, "", value.lower()
    if kind == "phone":
        return kind, "", phone_e164(value, region)
    return kind, "", value


@lru_cache(maxsize=4096)
def phone_e164(value: str, region: str = "TR") -> str:
    """Memoised: parsing is slow, and one person's number comes back on every channel."""
    try:
        number = phonenumbers.parse(value, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise BadIdentity(f"not a phone number: {value[:40]!r} ({exc})") from None
    if not phonenumbers.is_possible_number(number):
        raise BadIdentity(f"not a phone number: {value[:40]!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_identity(text: str, region: str = "TR") -> tuple[str, str, str]:
    """One identity as written in a CRM file: an e-mail, a phone, `crm:ID`, or a handle
    as `channel:@handle` (twitter:@ali)."""
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep and prefix.lower() in ("email", "phone", "crm"):
        return normalise(prefix.lower(), rest, region=region)
    if sep and rest and not prefix.startswith("+") and "@" not in prefix:
        return normalise("handle", rest, prefix, region)
    if "@" in text:
        return normalise("email", text, region=region)
    return normalise("phone", text, region=region)


def label(kind: str, channel: str, value: str) -> str:
    """How an identity reads in the audit and errors: twitter:@ali, email:a@b.c."""
    if kind == "handle":
        return f"{channel}:@{value}"
    return f"{kind}:{value}"
