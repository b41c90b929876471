"""A hostile-content corpus pushed through the webhook, then shown everywhere a person
reads it: the dashboard queue and mention page, the reply draft, the Slack, Mattermost
and webhook alerts, and the e-mail reply. Nothing executes, pings, links or adds a
header; the text itself is still there for the agent to read."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.parser import BytesParser
from typing import Any

import pytest

from connectors.mail_parse import parse_mail
from connectors.mail_send import compose_reply
from listener.app import build_services, init_app
from responders.alerts.outbox import AlertOutbox
from tests.conftest import make_config
from tests.responders.hooks import FakeHook
from tests.web.logins import login_as
from tests.web.test_api import AUTH, mention, push

CORPUS = [
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "{{7*7}} {% for x in range(9) %}loop{% endfor %} ${7*7}",
    "<!channel> <!here> <@U123ABC> <#C123> <http://evil.example|click here>",
    "[click](http://evil.example) @all **bold** `code`",
    "a\r\nBcc: victim@evil.example\r\n\r\nbody",
    "\u202egnp.exe \u200b\u200d\ufeff",
    "nul\x00byte and \ud800 half an emoji",
    "ş" * 25_000,
]
SLACK_CONTROL = re.compile(r"<[!@#]|<http://evil")


@pytest.fixture
async def hook(aiohttp_server: Any) -> tuple[FakeHook, str]:
    fake = FakeHook()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def stack(aiohttp_client: Any, hook: Any, db_url: str, clock: Any,
                enricher: Any) -> Any:
    """The service with every chat sink pointed at a local stand-in, the corpus stored."""
    _, base = hook
    config = make_config(db_url, alerts=[
        {"kind": "slack", "name": "slack", "webhook_url": base + "/slack", "on": ["breached"]},
        {"kind": "mattermost", "name": "mm", "webhook_url": base + "/mm", "on": ["breached"]},
        {"kind": "webhook", "name": "hook", "url": base + "/hook", "secret": "alert-secret",
         "on": ["breached"]}])
    services = build_services(config, clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    batch = [mention(f"e-{n}", text, channel="web", handle=f"h{n}", name=text[:200])
             for n, text in enumerate(CORPUS)]
    response = await push(client, batch)
    assert response.status == 202, await response.text()
    return services, client, config, (await response.json())["ids"]


def assert_inert_html(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "onerror=alert(1)>" not in html.replace("onerror=alert(1)&gt;", "")
    where = html.find("\x00")
    assert where < 0, html[where - 300: where + 50]
    assert "looploop" not in html


async def test_the_dashboard_shows_hostile_text_as_text(stack: Any) -> None:
    services, client, _, ids = stack
    await login_as(client, services, role="lead")
    queue = await client.get("/")
    assert queue.status == 200
    html = await queue.text()
    assert_inert_html(html)
    assert "{{7*7}}" in html
    for mention_id in ids:
        page = await client.get(f"/mentions/{mention_id}")
        assert page.status == 200
        html = await page.text()
        assert_inert_html(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (await (await client.get(
        f"/mentions/{ids[0]}")).text())


async def test_reply_drafts_never_evaluate_what_the_customer_wrote(stack: Any) -> None:
    _, client, _, ids = stack
    for mention_id in ids:
        response = await client.get(f"/api/v1/mentions/{mention_id}/draft?intent=apology",
                                    headers=AUTH)
        assert response.status == 200
        draft = (await response.json())["text"]
        assert "looploop" not in draft and "\x00" not in draft
    template_like = await (await client.get(f"/api/v1/mentions/{ids[2]}/draft?intent=apology",
                                            headers=AUTH)).json()
    assert "{{7*7}}" in template_like["text"]


async def test_chat_alerts_neither_ping_nor_link_nor_break_their_format(
        stack: Any, hook: Any, clock: Any) -> None:
    services, _, config, _ = stack
    fake, _ = hook
    clock.advance(timedelta(hours=9))  # past every same-day deadline
    assert await services.engine.fire_due(clock.now()) >= len(CORPUS)
    outbox = AlertOutbox.from_config(config, services.store, services.metrics, clock)
    while await outbox.run_once(clock.now()):
        pass
    await outbox.close()
    by_path: dict[str, list[Any]] = {}
    for received in fake.received:
        by_path.setdefault(received.path.split("?")[0], []).append(json.loads(received.raw))
    assert set(by_path) == {"/slack", "/mm", "/hook"}
    for body in by_path["/slack"]:
        texts = [body["text"]] + [b["text"]["text"] for b in body["blocks"] if "text" in b]
        texts += [e["text"] for b in body["blocks"] for e in b.get("elements", [])]
        for text in texts:
            assert not SLACK_CONTROL.search(text), text
            assert "<script" not in text and "\x00" not in text
    for body in by_path["/mm"]:
        text = json.dumps(body, ensure_ascii=False)
        assert "@all" not in text and "<!channel>" not in text
        assert "](http://evil.example)" not in text
    hook_texts = json.dumps(by_path["/hook"])
    assert "<!channel>" in hook_texts  # a machine consumer gets the text as written, in JSON


def test_an_email_reply_carries_no_injected_header() -> None:
    raw = (b"From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40evil=2Eexample?= <eve@example.com>\r\n"
           b"Subject: =?utf-8?q?Hi=0D=0ABcc=3A_victim=40evil=2Eexample?= <script>\r\n"
           b"Message-ID: <m1@example.com>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0300\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n")
    original = parse_mail(raw)
    reply = compose_reply(original, "Sorry!\r\nBcc: victim@evil.example\r\n",
                          Address("Acme", addr_spec="help@acme.example"),
                          datetime(2026, 11, 23, 10, tzinfo=UTC))
    sent = BytesParser(policy=policy.default).parsebytes(reply.as_bytes())
    assert "Bcc" not in sent and sent["To"].addresses[0].addr_spec == "eve@example.com"
    assert set(sent.keys()) <= {"From", "To", "Subject", "Date", "Message-ID", "In-Reply-To",
                                "References", "Content-Type", "Content-Transfer-Encoding",
                                "MIME-Version"}
    assert "Bcc: victim@evil.example" in sent.get_content()  # the text stays text
