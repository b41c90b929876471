"""An agent's answer as an e-mail reply: `Re: <subject>`, In-Reply-To and References set so
the customer's mail client files it under their message, sent over SMTP (`aiosmtplib`).

Every refusal becomes `ReplyRefused` with the server's own code and words, and means the
message was not accepted: nothing is recorded as sent.
"""

from __future__ import annotations

import re
import ssl
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal

from connectors.base import ReplyRefused
from connectors.mail_parse import Mail
from connectors.mail_text import reply_subject

SmtpTls = Literal["starttls", "tls", "none"]
MAX_REFERENCES = 20
HEADER_BREAKERS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: SmtpTls
    username: str | None
    password: str | None
    timeout: float
    context: ssl.SSLContext

    @property
    def where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"


def compose_reply(original: Mail, text: str, sender: Address, now: datetime) -> EmailMessage:
    """The reply, addressed to the original's Reply-To (else From). Raises ValueError when
    the original's headers cannot be used in a reply."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = Address(header_text(original.reply_to_name), addr_spec=original.reply_to)
    message["Subject"] = header_text(reply_subject(original.subject))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.domain or "localhost")
    if original.message_id:
        chain = [*original.references, original.message_id]
        chain = list(dict.fromkeys(chain))
        if len(chain) > MAX_REFERENCES:  # RFC 5322 §3.6.4: keep the first and the latest
            chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
        message["In-Reply-To"] = original.message_id
        message["References"] = " ".join(chain)
    message.set_content(text)
    return message


def header_text(value: str) -> str:
    """A customer's name or subject, safe to put in a header. The `email` package decodes
    `=?utf-8?q?...?=` words in a value it is given, so an encoded CR LF would become a
    header of its own (a `Bcc:` to anyone): decode first, then drop what breaks lines."""
    with suppress(ValueError, LookupError, UnicodeError):  # unknown charset, bad base64
        value = str(make_header(decode_header(value)))
    return " ".join(HEADER_BREAKERS.sub(" ", value).replace("=?", "= ?").split())


async def send(server: SmtpServer, message: EmailMessage) -> None:
    """Hand the message to the server; raises ReplyRefused when it is not taken."""
    import aiosmtplib  # here: only a mailbox source that replies needs it

    client = aiosmtplib.SMTP(
        hostname=server.host, port=server.port, use_tls=server.tls == "tls",
        start_tls=server.tls == "starttls", tls_context=server.context,
        timeout=server.timeout)
    try:
        async with client:
            if client.is_ehlo_or_helo_needed:  # extensions are forgotten after STARTTLS
                await client.ehlo()
            if server.username and server.password and client.supports_extension("auth"):
                await client.login(server.username, server.password)
            await client.send_message(message)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise ReplyRefused(401, f"{server.where} refused the login of {server.username!r} "
                           f"(check smtp_username and smtp_password): {exc.code} "
                           f"{exc.message}; nothing sent") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0] if exc.recipients else None
        code = first.code if first else 550
        words = f"{first.code} {first.message}" if first else str(exc)
        raise ReplyRefused(_status(code), f"{server.where} refused the recipient "
                           f"{message['To']}: {words}; nothing sent") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise ReplyRefused(_status(exc.code), f"{server.where} refused the reply: "
                           f"{exc.code} {exc.message}; nothing sent") from None
    except ssl.SSLCertVerificationError as exc:
        raise ReplyRefused(502, f"{server.where}: its TLS certificate is not trusted "
                           f"({exc.verify_message}); set ca_file for a private CA; "
                           "nothing sent") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ReplyRefused(502, f"{server.where} could not be reached: "
                           f"{exc or type(exc).__name__}; nothing sent") from None


def _status(code: int) -> int:
    """A permanent refusal (5xx) is final for this message; a 4xx is worth another try."""
    return 422 if 500 <= code < 600 else 503
