"""The `imap` source against a real Dovecot on 127.0.0.1 (started per test with a throwaway
config) and replies through a real SMTP server (aiosmtpd): multipart, HTML-only and
Turkish-charset mail, quoted history and signatures trimmed, a message without
Message-ID, a UIDVALIDITY reset without duplicates, brand replies stopping the clock,
the customer linked by e-mail across channels, and threaded replies sent or refused."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from connectors.base import (
    AuthFailed,
    Batch,
    RawAuthor,
    RawItem,
    ReplyRefused,
    ReplyTarget,
    SourceError,
)
from connectors.imap import ImapConnector, ImapSource
from connectors.mail_text import reply_subject, trim
from listener.app import build_services, init_app, prepare_database
from listener.config import ConfigError, parse_config
from listener.models import Mention, MentionEvent, RejectedItem, SourceState
from listener.pipeline.ingest import SourceInfo
from tests.conftest import MONDAY_10, make_config
from tests.connectors.dovecot import DOVECOT, Dovecot, free_port, running_dovecot, self_signed_cert
from tests.web.test_api import AUTH, listed

NOW = MONDAY_10.astimezone(UTC)  # Monday 23 Nov 2026, 10:00 in Istanbul
SMTP_USER, SMTP_PASSWORD = "mailer", "smtp-s3cret-pass"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if not DOVECOT.exists():
        pytest.skip(f"{DOVECOT} is not installed (apt-get install dovecot-imapd; CI does)")
    with running_dovecot() as server:
        yield server


def at(hour: int, minute: int = 0) -> datetime:
    """That time on the test's Monday, Istanbul time."""
    return MONDAY_10.replace(hour=hour, minute=minute)


def raw_mail(body: str | bytes, *, subject: str = "Siparişim gelmedi",
             sender: str = "Ali Veli <ali.veli@example.com>", to: str = "support@acme.test",
             message_id: str | None = "<c1@example.com>", when: datetime | None = None,
             headers: dict[str, str] | None = None,
             content_type: str = "text/plain; charset=utf-8") -> bytes:
    """An RFC 5322 message written out by hand, so charsets and bytes are exactly as a
    mail client sent them. `body` as str is UTF-8; give bytes for any other charset."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}",
             f"Date: {(when or at(9, 12)).strftime('%a, %d %b %Y %H:%M:%S %z')}",
             "MIME-Version: 1.0"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if content_type:
        lines += [f"Content-Type: {content_type}", "Content-Transfer-Encoding: 8bit"]
    head = "\r\n".join(lines).encode("utf-8")  # raw UTF-8 in headers, as modern clients do
    data = body.encode("utf-8") if isinstance(body, str) else body
    return head + b"\r\n\r\n" + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def source(server: Dovecot, **overrides: Any) -> dict[str, Any]:
    return {"id": "support", "kind": "imap", "host": "127.0.0.1", "port": server.port,
            "tls": "starttls", "ca_file": str(server.cert), "username": server.user,
            "password": server.password, "interval": "60s", **overrides}


def connector(server: Dovecot, **overrides: Any) -> ImapConnector:
    return ImapConnector(ImapSource.model_validate(source(server, **overrides)))


async def poll(imap: ImapConnector, cursor: str | None = None) -> Batch:
    return await imap.fetch(cursor, NOW)


def by_id(batch: Batch) -> dict[str, RawItem]:
    return {item.external_id: item for item in batch.items}


# -- reading mail ---------------------------------------------------------------------


async def test_multipart_prefers_plain_text_and_keeps_only_the_new_words(
        dovecot: Dovecot) -> None:
    first = raw_mail(
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Merhaba,\n\n12345 numaralı siparişim iki haftadır gelmedi.\n\n-- \nAli Veli\n"
        "0532 000 00 00\n"
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>HTML version that must not be used</p>\r\n--b1--\r\n",
        content_type='multipart/alternative; boundary="b1"')
    follow_up = raw_mail(
        "Hâlâ bir haber yok, lütfen dönüş yapın.\n\n"
        "On Mon, 23 Nov 2026 at 09:12, Acme Support <support@acme.test>\nwrote:\n"
        "> Siparişinizi kontrol ediyoruz.\n> Saygılarımızla\n",
        subject="Re: Siparişim gelmedi", message_id="<c2@example.com>", when=at(9, 50),
        headers={"In-Reply-To": "<r1@acme.test>",
                 "References": "<c1@example.com> <r1@acme.test>"})
    dovecot.append(first, at(9, 12))
    dovecot.append(follow_up, at(9, 50))

    items = by_id(await poll(connector(dovecot)))

    opening = items["<c1@example.com>"]
    assert opening.text == ("Siparişim gelmedi\n\n"  # a new conversation opens with its subject
                            "Merhaba,\n\n12345 numaralı siparişim iki haftadır gelmedi.")
    assert opening.author == RawAuthor("ali.veli@example.com", "Ali Veli",
                                       email="ali.veli@example.com")
    assert opening.channel == "email" and opening.url is None and not opening.by_brand
    assert opening.created_at == at(9, 12)
    assert opening.thread == "<c1@example.com>" and opening.in_reply_to is None
    reply = items["<c2@example.com>"]
    assert reply.text == "Hâlâ bir haber yok, lütfen dönüş yapın."
    assert reply.thread == "<c1@example.com>" and reply.in_reply_to == "<r1@acme.test>"


async def test_html_only_mail_is_read_as_text_without_quote_or_signature(
        dovecot: Dovecot) -> None:
    html = ('<div dir="ltr"><p>The invoice total is <b>wrong</b> &amp; I was charged twice.'
            '</p><p>Please refund.<br>Thanks</p>'
            '<div class="gmail_signature">Jane Doe | CFO | +44 20 0000 0000</div></div>'
            '<div class="gmail_quote"><div class="gmail_attr">On Fri, Nov 20, 2026, Acme '
            '&lt;billing@acme.test&gt; wrote:</div><blockquote>Your invoice is attached.'
            '</blockquote></div><script>alert(1)</script>')
    dovecot.append(raw_mail(html, subject="Re: Invoice 2026-118",
                            sender="Jane Doe <jane@corp.example>",
                            message_id="<h1@corp.example>",
                            headers={"In-Reply-To": "<inv@acme.test>"},
                            content_type="text/html; charset=utf-8"), at(9, 30))

    [item] = (await poll(connector(dovecot))).items
    assert item.text == ("The invoice total is wrong & I was charged twice.\n\n"
                         "Please refund.\nThanks")


async def test_turkish_mail_in_iso_8859_9_and_windows_1254_is_decoded(
        dovecot: Dovecot) -> None:
    latin5 = ("Kargom hâlâ gelmedi, çok üzgünüm. İade istiyorum.\n\n"
              "23 Kas 2026 Pzt 09:00 tarihinde Acme Destek <destek@acme.test> şunu yazdı:\n"
              "> Kargonuz yolda.\n").encode("iso-8859-9")
    dovecot.append(raw_mail(latin5, subject="=?iso-8859-9?Q?=DDade_talebi?=",
                            sender="=?iso-8859-9?Q?=DEule_=C7elik?= <sule@example.com.tr>",
                            message_id="<tr1@example.com.tr>",
                            headers={"In-Reply-To": "<d1@acme.test>"},
                            content_type="text/plain; charset=iso-8859-9"), at(9, 20))
    cp1254 = "Ödeme iki kez çekildi; ğüşıöç İĞÜŞÖÇ.\n\n--\nŞule".encode("cp1254")
    dovecot.append(raw_mail(cp1254, subject="=?windows-1254?B?1mRlbWUgaGF0YXP9?=",
                            sender="sule@example.com.tr", message_id="<tr2@example.com.tr>",
                            content_type="text/plain; charset=windows-1254"), at(9, 25))
    unlabelled = "Şikayetim var: ürün kırık geldi.".encode("cp1254")
    dovecot.append(raw_mail(unlabelled, subject="Kırık ürün", message_id="<tr3@example.com>",
                            content_type="text/plain"), at(9, 26))

    items = by_id(await poll(connector(dovecot)))

    first = items["<tr1@example.com.tr>"]
    assert first.text == "Kargom hâlâ gelmedi, çok üzgünüm. İade istiyorum."
    assert first.author.name == "Şule Çelik" and first.author.email == "sule@example.com.tr"
    assert items["<tr2@example.com.tr>"].text == ("Ödeme hatası\n\n"
                                                  "Ödeme iki kez çekildi; ğüşıöç İĞÜŞÖÇ.")
    # No charset at all: not UTF-8, so read as the likeliest Turkish one
    assert items["<tr3@example.com>"].text == "Kırık ürün\n\nŞikayetim var: ürün kırık geldi."


async def test_mail_without_message_id_gets_a_stable_id_from_its_content(
        dovecot: Dovecot) -> None:
    message = raw_mail("Do you ship to Cyprus?", subject="Shipping question",
                       sender="noid@example.org", message_id=None)
    dovecot.append(message, at(9, 40))

    [item] = (await poll(connector(dovecot))).items
    [again] = (await poll(connector(dovecot))).items  # a first poll again, from scratch

    assert item.external_id.startswith("hash:") and item.external_id == again.external_id
    assert item.thread == item.external_id
    assert "no Message-ID" in (item.note or "")


async def test_polls_follow_uids_and_never_mark_mail_as_read(dovecot: Dovecot) -> None:
    dovecot.append(raw_mail("old", message_id="<old@example.com>", when=at(9) - timedelta(days=3)),
                   at(9) - timedelta(days=3))
    dovecot.append(raw_mail("first", message_id="<m1@example.com>"), at(9, 1))
    imap = connector(dovecot)

    first = await poll(imap)
    assert [i.external_id for i in first.items] == ["<m1@example.com>"]  # backfill: 1 day
    again = await poll(imap, first.cursor)
    assert again.items == [] and again.cursor == first.cursor
    dovecot.append(raw_mail("second", message_id="<m2@example.com>"), at(9, 30))
    second = await poll(imap, again.cursor)
    assert [i.external_id for i in second.items] == ["<m2@example.com>"]

    with dovecot.session() as client:
        client.select("INBOX", readonly=True)
        _, flags = client.fetch("1:*", "(FLAGS)")
    assert not any(b"\\Seen" in f for f in flags)


async def test_attachments_are_listed_by_name_and_never_stored(dovecot: Dovecot) -> None:
    pdf = "JVBERi0xLjQKJcfsj6IKJSVFT0YK"  # a tiny PDF, base64
    body = (
        "--m1\r\nContent-Type: multipart/related; boundary=r1\r\n\r\n"
        "--r1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        '<p>Photo of the broken box attached.</p><img src="cid:logo@acme">\r\n'
        "--r1\r\nContent-Type: image/png\r\nContent-ID: <logo@acme>\r\n"
        "Content-Disposition: inline; filename=logo.png\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r1--\r\n"
        "--m1\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=utf-8''fatura%20%C5%9Fubat.pdf\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n"
        "--m1\r\nContent-Type: image/jpeg; name=\"kutu.jpg\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n/9j/4AAQSkZJRg==\r\n--m1--\r\n")
    dovecot.append(raw_mail(body, subject="Broken box", message_id="<att@example.com>",
                            content_type="multipart/mixed; boundary=m1"), at(9, 12))

    [item] = (await poll(connector(dovecot))).items
    assert item.text == ("Broken box\n\nPhoto of the broken box attached.\n\n"
                         "📎 fatura şubat.pdf, kutu.jpg")
    assert item.note == "attachments not stored: fatura şubat.pdf (21 B), kutu.jpg (10 B)"
    assert pdf not in item.text and "logo.png" not in item.text


async def test_a_huge_mail_is_read_in_part_and_says_so(dovecot: Dovecot) -> None:
    video = "A" * (3 * 1024 * 1024)  # a 3 MB attachment after the text
    body = ("--m1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "Video of the fault attached.\r\n"
            "--m1\r\nContent-Type: video/mp4\r\n"
            "Content-Disposition: attachment; filename=fault.mp4\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{video}\r\n--m1--\r\n")
    dovecot.append(raw_mail(body, message_id="<big@example.com>",
                            content_type="multipart/mixed; boundary=m1"), at(9, 12))

    [item] = (await poll(connector(dovecot))).items
    assert item.text.startswith("Siparişim gelmedi\n\nVideo of the fault attached.")
    assert "only the first 2.0 MB of this 3.0 MB e-mail was read" in (item.note or "")


async def test_a_sender_clock_ahead_cannot_push_the_deadline_out(dovecot: Dovecot) -> None:
    dovecot.append(raw_mail("Clock says tomorrow", when=at(9) + timedelta(days=1)), at(9, 12))
    [item] = (await poll(connector(dovecot))).items
    assert item.created_at == at(9, 12)  # when the server received it
    assert item.note == "Date header later than arrival: arrival time used"


async def test_automatic_replies_and_bounces_are_rejected_not_mentions(
        dovecot: Dovecot) -> None:
    dovecot.append(raw_mail("I am out of the office until Monday.", subject="Out of office",
                            message_id="<ooo@example.com>",
                            headers={"Auto-Submitted": "auto-replied"}), at(9, 2))
    dovecot.append(raw_mail("A real question", message_id="<q@example.com>"), at(9, 3))

    batch = await poll(connector(dovecot))
    assert [i.external_id for i in batch.items] == ["<q@example.com>"]
    [rejected] = batch.rejected
    assert rejected.external_id == "<ooo@example.com>"
    assert rejected.reason == ("automatic e-mail (Auto-Submitted: auto-replied), not written "
                               "by a person")


# -- connection and configuration -------------------------------------------------------


async def test_imaps_and_starttls_verify_the_certificate(dovecot: Dovecot) -> None:
    dovecot.append(raw_mail("hello", message_id="<tls@example.com>"), at(9, 10))
    for tls, port in (("ssl", dovecot.tls_port), ("starttls", dovecot.port)):
        batch = await poll(connector(dovecot, tls=tls, port=port))
        assert [i.external_id for i in batch.items] == ["<tls@example.com>"]

    with pytest.raises(SourceError, match=r"certificate is not trusted.*set ca_file"):
        await poll(connector(dovecot, tls="ssl", port=dovecot.tls_port, ca_file=None))


async def test_a_refused_login_is_auth_failed_without_the_password(dovecot: Dovecot) -> None:
    with pytest.raises(AuthFailed) as caught:
        await poll(connector(dovecot, password="wrong-pass-123"))
    assert "check username and password" in str(caught.value)
    assert "wrong-pass-123" not in str(caught.value)


async def test_a_missing_folder_is_named(dovecot: Dovecot) -> None:
    with pytest.raises(SourceError, match="folder 'Destek' could not be opened"):
        await poll(connector(dovecot, folder="Destek"))


async def test_a_folder_with_a_turkish_name_is_read(dovecot: Dovecot) -> None:
    dovecot.create("&ANY-zel Kutu")  # "Özel Kutu" in IMAP's modified UTF-7
    dovecot.append(raw_mail("hi", message_id="<f@example.com>"), at(9, 10),
                   folder="&ANY-zel Kutu")
    batch = await poll(connector(dovecot, folder="Özel Kutu"))
    assert [i.external_id for i in batch.items] == ["<f@example.com>"]


def test_passwords_never_cross_a_network_in_clear() -> None:
    base = {"id": "m", "kind": "imap", "username": "support@acme.com", "password": "x"}
    with pytest.raises(ConfigError, match="tls: none"):
        parse_config({"sources": [{**base, "host": "mail.acme.com", "tls": "none"}]})
    with pytest.raises(ConfigError, match="smtp_tls: none"):
        parse_config({"sources": [{**base, "host": "mail.acme.com", "smtp_tls": "none",
                                   "smtp_host": "smtp.acme.com"}]})
    with pytest.raises(ConfigError, match="needs the mailbox password"):
        parse_config({"sources": [{**base, "host": "mail.acme.com", "password": ""}]})
    local = parse_config({"sources": [{**base, "host": "127.0.0.1", "tls": "none"}]})
    assert local.sources[0].imap_port == 143 and local.sources[0].channel == "email"
    off = parse_config({"sources": [{**base, "host": "mail.acme.com", "password": "",
                                     "enabled": False}]})
    assert off.sources[0].imap_port == 993


def test_replies_name_the_missing_smtp_settings() -> None:
    config = ImapSource.model_validate({"id": "m", "kind": "imap", "host": "mail.acme.com",
                                        "username": "destek", "password": "x",
                                        "send_replies": True})
    assert ImapConnector(config).missing_reply_credentials() == ["smtp_host", "from_address"]
    config = config.model_copy(update={"username": "destek@acme.com"})
    assert ImapConnector(config).missing_reply_credentials() == ["smtp_host"]
    with pytest.raises(ConfigError, match="from_address must be an e-mail address"):
        parse_config({"sources": [{"id": "m", "kind": "imap", "host": "mail.acme.com",
                                   "username": "destek", "password": "x",
                                   "from_address": "Acme Destek"}]})


# -- text trimming (pure) ---------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("Thanks, that fixed it.\n\nOn Mon, Nov 23, 2026 at 9:00 AM Acme <s@acme.test> wrote:\n"
     "> Try again\n", "Thanks, that fixed it."),
    ("Tamam, teşekkürler.\n\n23 Kas 2026 Pzt, 09:00 tarihinde Acme <s@acme.test> şunu yazdı:"
     "\n\n> Deneyin\n", "Tamam, teşekkürler."),
    ("Still broken.\n\n________________________________\nFrom: Acme Support\n"
     "Sent: Monday, November 23, 2026 09:00\nTo: Jane\nSubject: RE: Order\n\nOld text",
     "Still broken."),
    ("Hâlâ sorun var.\n\nKimden: Acme Destek\nGönderildi: 23 Kasım 2026 Pazartesi 09:00\n"
     "Kime: Ayşe\nKonu: YNT: Sipariş\n\neski metin", "Hâlâ sorun var."),
    ("My answers inline:\n> Which order?\n12345\n> Which colour?\nRed\n",
     "My answers inline:\n12345\nRed"),
    ("Please call me.\n\n-- \nJane Doe\nCFO", "Please call me."),
    ("Bakar mısınız?\n\niPhone'umdan gönderildi", "Bakar mısınız?"),
    ("Ürün yanlış adrese gönderildi", "Ürün yanlış adrese gönderildi"),
    ("On second thought, cancel it.", "On second thought, cancel it."),
    ("> everything quoted\n> nothing new", "> everything quoted\n> nothing new"),
])
def test_quoted_history_and_signatures_are_trimmed(text: str, expected: str) -> None:
    assert trim(text) == expected


def test_a_forward_keeps_the_forwarded_message() -> None:
    text = ("See below.\n\n---------- Forwarded message ---------\nFrom: Ali <a@example.com>\n"
            "Date: Mon, Nov 23, 2026\nSubject: Broken\nTo: Jane\n\nMy order is broken.")
    assert trim(text, forwarded=True) == text


@pytest.mark.parametrize("subject,expected", [
    ("Siparişim gelmedi", "Re: Siparişim gelmedi"), ("RE: Re: Order", "Re: Order"),
    ("YNT: Sipariş", "Re: Sipariş"), ("AW: Rechnung", "Re: Rechnung"), ("", "Re: your message"),
])
def test_reply_subjects_say_re_once(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


# -- through the real pipeline ----------------------------------------------------------


async def start_services(db_url: str, clock: Any, enricher: Any,
                         *sources: dict[str, Any]) -> Any:
    config = make_config(db_url, sources=list(sources))
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    return services


async def mentions(services: Any) -> dict[str, Mention]:
    async with services.store.read() as session:
        return {m.external_id: m for m in await session.scalars(select(Mention))}


async def test_a_uidvalidity_reset_rereads_the_folder_without_duplicates(
        db_url: str, clock: Any, enricher: Any, dovecot: Dovecot) -> None:
    dovecot.create("Destek")
    before = [raw_mail("Kargo nerede?", message_id="<k1@example.com>", when=at(9, 1)),
              raw_mail("No id here", sender="noid@example.org", message_id=None,
                       when=at(9, 2))]
    for index, message in enumerate(before):
        dovecot.append(message, at(9, 1 + index), folder="Destek")
    services = await start_services(db_url, clock, enricher,
                                    source(dovecot, folder="Destek"))
    try:
        assert await services.coordinator.poll("support") == "ok"
        assert len(await mentions(services)) == 2

        dovecot.recreate("Destek")  # rebuilt mailbox: same mail, new UIDs and UIDVALIDITY
        for index, message in enumerate(before):
            dovecot.append(message, at(9, 1 + index), folder="Destek")
        dovecot.append(raw_mail("Yeni mesaj", message_id="<k3@example.com>", when=at(9, 40)),
                       at(9, 40), folder="Destek")
        clock.advance(timedelta(minutes=5))
        assert await services.coordinator.poll("support") == "ok"

        stored = await mentions(services)
        assert len(stored) == 3 and "<k3@example.com>" in stored
        assert stored["<k3@example.com>"].deadline_at is not None  # queued
        async with services.store.read() as session:
            state = await session.get(SourceState, "support")
        assert f'"validity": {dovecot.validity("Destek")}' in (state.cursor or "")
    finally:
        await services.coordinator.close()
        await services.store.close()


async def test_brand_replies_in_the_mailbox_stop_the_customers_clock(
        db_url: str, clock: Any, enricher: Any, dovecot: Dovecot) -> None:
    dovecot.create("Sent")
    dovecot.append(raw_mail("Siparişim nerede?", message_id="<a1@example.com>",
                            sender="Ayla <ayla@example.com>", when=at(9, 0)), at(9, 0))
    dovecot.append(raw_mail("Refund please", message_id="<b1@example.com>",
                            sender="Bob <bob@example.com>", when=at(9, 5)), at(9, 5))
    dovecot.append(raw_mail("Still waiting", message_id="<c1@example.com>",
                            sender="Cem <cem@example.com>", when=at(9, 6)), at(9, 6))
    services = await start_services(
        db_url, clock, enricher,
        source(dovecot, sent_folder="Sent", brand_addresses=["@acme.test"]))
    try:
        assert await services.coordinator.poll("support") == "ok"
        # Answered from the shared mailbox (its Sent folder), and by a colleague from her
        # own address with the support address in copy (it lands in the inbox).
        dovecot.append(raw_mail("Kargonuz yarın teslim edilecek.", subject="Re: Siparişim",
                                sender="Acme Destek <support@acme.test>", to="ayla@example.com",
                                message_id="<r1@acme.test>", when=at(9, 40),
                                headers={"In-Reply-To": "<a1@example.com>",
                                         "References": "<a1@example.com>"}),
                       at(9, 40), folder="Sent")
        dovecot.append(raw_mail("Refunded today.", subject="Re: Refund",
                                sender="Ayşe <ayse@acme.test>", to="bob@example.com",
                                message_id="<r2@acme.test>", when=at(9, 45),
                                headers={"In-Reply-To": "<b1@example.com>",
                                         "Cc": "support@acme.test"}), at(9, 45))
        dovecot.append(raw_mail("Newsletter", subject="Kampanya", sender="support@acme.test",
                                message_id="<n1@acme.test>", when=at(9, 46)), at(9, 46),
                       folder="Sent")
        clock.advance(timedelta(minutes=50))
        assert await services.coordinator.poll("support") == "ok"

        stored = await mentions(services)
        assert stored["<a1@example.com>"].status == "responded"
        assert stored["<a1@example.com>"].first_response_at.astimezone(UTC) == at(9, 40)
        assert stored["<a1@example.com>"].response_external_id == "<r1@acme.test>"
        assert stored["<b1@example.com>"].status == "responded"
        assert stored["<b1@example.com>"].first_response_at.astimezone(UTC) == at(9, 45)
        assert stored["<c1@example.com>"].status == "new"  # nobody answered Cem
        assert stored["<r1@acme.test>"].status == "ignored"
        assert stored["<r2@acme.test>"].status == "ignored"
        assert "<n1@acme.test>" not in stored  # a Sent message answering nobody
    finally:
        await services.coordinator.close()
        await services.store.close()


async def test_the_sender_is_the_customer_who_wrote_from_that_address_elsewhere(
        db_url: str, clock: Any, enricher: Any, dovecot: Dovecot) -> None:
    services = await start_services(db_url, clock, enricher, source(dovecot),
                                    {"id": "site-form", "kind": "webhook",
                                     "secret": "s3cret-hook"})
    try:
        form = RawItem("form-1", "Contact form: my order is late", at(8, 30), "web",
                       RawAuthor("ali-form", "Ali", email="ali.veli@example.com"))
        await services.pipeline.ingest(SourceInfo("site-form", "webhook", "web"), [form])
        dovecot.append(raw_mail("Did you get my form?",
                                sender="Ali Veli <Ali.Veli@Example.com>"), at(9, 12))
        assert await services.coordinator.poll("support") == "ok"

        stored = await mentions(services)
        assert stored["<c1@example.com>"].customer_id == stored["form-1"].customer_id
        assert stored["<c1@example.com>"].channel == "email"
    finally:
        await services.coordinator.close()
        await services.store.close()


async def test_unreadable_and_automatic_mail_is_kept_as_rejected(
        db_url: str, clock: Any, enricher: Any, dovecot: Dovecot) -> None:
    dovecot.append(raw_mail("Delivery failed", sender="MAILER-DAEMON <>", message_id="<x@m>"),
                   at(9, 1))
    dovecot.append(raw_mail("Out", message_id="<ooo@example.com>",
                            headers={"Auto-Submitted": "auto-replied"}), at(9, 2))
    dovecot.append(raw_mail("Real", message_id="<real@example.com>"), at(9, 3))
    services = await start_services(db_url, clock, enricher, source(dovecot))
    try:
        assert await services.coordinator.poll("support") == "ok"
        assert sorted(await mentions(services)) == ["<real@example.com>"]
        async with services.store.read() as session:
            rejected = {r.reason for r in await session.scalars(select(RejectedItem))}
        assert rejected == {"unreadable e-mail: no From address",
                            "automatic e-mail (Auto-Submitted: auto-replied), not written "
                            "by a person"}
    finally:
        await services.coordinator.close()
        await services.store.close()


# -- sending replies over SMTP ----------------------------------------------------------


@dataclass
class SmtpSink:
    """What the SMTP server accepted, and the addresses it refuses."""

    port: int = 0
    received: list[Any] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.received.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode() \
            and auth_data.password == SMTP_PASSWORD.encode()
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[SmtpSink, Path]]:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS (self-signed certificate) and a login."""
    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, tls_context=context,
                            require_starttls=True, authenticator=sink.authenticate,
                            auth_require_tls=True)
    controller.start()
    try:
        yield sink, cert
    finally:
        controller.stop()


async def start_api(aiohttp_client: Any, db_url: str, clock: Any, enricher: Any,
                    dovecot: Dovecot, smtp_port: int, smtp_ca: Path,
                    **overrides: Any) -> tuple[Any, Any]:
    """The API over an imap source that sends replies, after one poll stored the mail.
    The SMTP and IMAP certificates differ, so ca_file holds both."""
    bundle = smtp_ca.parent / "both.pem"
    bundle.write_text(dovecot.cert.read_text() + smtp_ca.read_text())
    imap = source(dovecot, **{
        "ca_file": str(bundle), "send_replies": True, "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port, "smtp_username": SMTP_USER, "smtp_password": SMTP_PASSWORD,
        "from_address": "Acme Destek <Support@Acme.test>", **overrides})
    services = await start_services(db_url, clock, enricher, imap)
    client = await aiohttp_client(init_app(services, background=False))
    assert await services.coordinator.poll("support") == "ok"
    return client, services


async def send_reply(client: Any, mention_id: int, text: str) -> Any:
    return await client.post(f"/api/v1/mentions/{mention_id}/reply",
                             json={"text": text, "send": True}, headers=AUTH)


async def test_a_reply_is_sent_threaded_and_stops_the_clock(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any, dovecot: Dovecot,
        smtp: tuple[SmtpSink, Path]) -> None:
    sink, smtp_ca = smtp
    dovecot.append(raw_mail("Kargom nerede?", subject="YNT: Siparişim gelmedi",
                            message_id="<c2@example.com>",
                            headers={"Reply-To": "Ali <ali.home@example.net>",
                                     "In-Reply-To": "<r1@acme.test>",
                                     "References": "<c1@example.com> <r1@acme.test>"}),
                   at(9, 12))
    client, services = await start_api(aiohttp_client, db_url, clock, enricher, dovecot,
                                       sink.port, smtp_ca)
    [mention] = await listed(client)
    response = await send_reply(client, mention["id"],
                                "Sayın Ali Veli,\n\nKargonuz bugün yola çıktı.")
    assert response.status == 200, await response.text()
    body = await response.json()

    [sent] = sink.received
    assert sink.envelopes == [("support@acme.test", ["ali.home@example.net"])]
    assert sink.logins == [SMTP_USER]
    assert sent["Subject"] == "Re: Siparişim gelmedi"
    assert sent["In-Reply-To"] == "<c2@example.com>"
    assert sent["References"] == "<c1@example.com> <r1@acme.test> <c2@example.com>"
    assert sent["To"] == "Ali <ali.home@example.net>"
    assert sent["From"] == "Acme Destek <support@acme.test>"
    assert sent.get_content().replace("\r\n", "\n").strip() == \
        "Sayın Ali Veli,\n\nKargonuz bugün yola çıktı."
    assert body["reply"]["id"] == sent["Message-ID"]
    assert sent["Message-ID"].endswith("@acme.test>")
    assert body["mention"]["status"] == "responded"
    async with services.store.read() as session:
        events = list(await session.scalars(select(MentionEvent).where(
            MentionEvent.mention_id == mention["id"], MentionEvent.kind == "replied")))
    assert [e.data["reply_id"] for e in events] == [sent["Message-ID"]]



async def test_a_refused_reply_is_a_clear_error_and_nothing_is_marked_sent(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any, dovecot: Dovecot,
        smtp: tuple[SmtpSink, Path]) -> None:
    sink, smtp_ca = smtp
    sink.refuse["ali.veli@example.com"] = ("550 5.1.1 <ali.veli@example.com>: Recipient "
                                           "address rejected: User unknown")
    dovecot.append(raw_mail("Kargom nerede?"), at(9, 12))
    client, _ = await start_api(aiohttp_client, db_url, clock, enricher, dovecot, sink.port,
                                smtp_ca)
    [mention] = await listed(client)
    response = await send_reply(client, mention["id"], "Kargonuz yolda.")
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "platform_refused"
    assert "550 5.1.1 <ali.veli@example.com>: Recipient address rejected" in \
        error["message"]
    assert "nothing sent" in error["message"]
    [still] = await listed(client)
    assert still["status"] == mention["status"] and still["response"] is None
    assert sink.received == []



async def test_a_refused_smtp_login_names_the_keys_not_the_password(
        aiohttp_client: Any, db_url: str, clock: Any, enricher: Any, dovecot: Dovecot,
        smtp: tuple[SmtpSink, Path]) -> None:
    sink, smtp_ca = smtp
    dovecot.append(raw_mail("Kargom nerede?"), at(9, 12))
    client, _ = await start_api(aiohttp_client, db_url, clock, enricher, dovecot, sink.port,
                                smtp_ca, smtp_password="bad-smtp-pass")
    [mention] = await listed(client)
    response = await send_reply(client, mention["id"], "Kargonuz yolda.")
    assert response.status == 502
    message = (await response.json())["error"]["message"]
    assert "check smtp_username and smtp_password" in message
    assert "bad-smtp-pass" not in message
    [still] = await listed(client)
    assert still["status"] == mention["status"] and sink.received == []



async def test_a_reply_to_mail_no_longer_in_the_folder_is_refused(
        dovecot: Dovecot) -> None:
    imap = connector(dovecot, send_replies=True, smtp_host="127.0.0.1", smtp_port=free_port())
    with pytest.raises(ReplyRefused) as caught:
        await imap.reply(ReplyTarget("<gone@example.com>", "ali@example.com"), "Hello")
    assert caught.value.status == 404 and "no longer in folder 'INBOX'" in caught.value.message


async def test_polling_does_not_block_the_event_loop(dovecot: Dovecot) -> None:
    """The blocking IMAP session runs in a worker thread: other tasks keep running."""
    for n in range(30):
        dovecot.append(raw_mail(f"message {n}", message_id=f"<n{n}@example.com>"), at(9, 1))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    batch = await poll(connector(dovecot))
    task.cancel()
    assert len(batch.items) == 30 and ticks > 1
