"""The mention page in a real Chromium, on SQLite and PostgreSQL: an agent opens a mention
from the queue, drafts from a template, watches the counter, sends the reply to a fake
Mastodon on 127.0.0.1 and sees the clock stop; copy-and-mark where the source cannot
send; hostile mentions stay inert on the page and in the composer's preview."""

# ruff: noqa: F811  (the Chromium and fake-Mastodon fixtures come from sibling test modules)
from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.connectors.test_mastodon import FakeMastodon
from tests.web.logins import PASSWORD, create_user
from tests.web.test_api import AUTH, mention
from tests.web.test_dashboard_browser import browser  # noqa: F401
from tests.web.test_mention_page import pushed, start, upstream  # noqa: F401

pytestmark = pytest.mark.browser

HOSTILE = ("<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"
           "{{ 7*7 }} \u202eSağdan sola\u202c مرحبا بكم 🙏🏽👩‍👩‍👧 ")
BIG = HOSTILE + "lorem ipsum " * 4200  # about 50 kB


@pytest.fixture
async def site(aiohttp_client: Any, aiohttp_server: Any, upstream: FakeMastodon, db_url: str,
               clock: Any, enricher: Any) -> tuple[Any, Any]:
    """The mention page tests' Listener, the Mastodon status polled, the user ayse."""
    client, services = await start(aiohttp_client, aiohttp_server, upstream, db_url, clock,
                                   enricher)
    assert await services.coordinator.poll("fedi") == "ok"
    await create_user(services, "ayse", "agent", "ayse")
    return client, services


async def signed_in(browser: Browser, client: Any) -> tuple[BrowserContext, Page, list[str]]:
    """A signed-in page that records console errors (CSP violations are among them)."""
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await page.goto(str(client.make_url("/login")))
    await page.fill("#name", "ayse")
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    return context, page, problems


async def fill(page: Page, text: str) -> None:
    """Typing, as far as the page's script is concerned (an input event)."""
    await page.fill("#reply-text", text)


async def test_agent_drafts_counts_and_sends_and_the_clock_stops(
        browser: Browser, site: tuple[Any, Any], upstream: FakeMastodon) -> None:
    client, services = site
    listed = await (await client.get("/api/v1/mentions", headers=AUTH)).json()
    toot = listed["items"][0]["id"]
    context, page, problems = await signed_in(browser, client)

    await page.goto(str(client.make_url("/")))
    async with page.expect_navigation():
        await page.click(f'a[href="/mentions/{toot}"]')
    assert page.url.endswith(f"/mentions/{toot}")
    assert await page.locator("#countdown").inner_text() in ("8h 00m left", "7h 59m left")

    await page.select_option("#intent", "apology")
    await expect(page.locator("#reply-text")).not_to_have_value("")
    draft = await page.input_value("#reply-text")
    assert "{{" not in draft
    assert await page.locator("#count").inner_text() == str(
        services.composer.measure("mastodon", draft, "fedi").length)
    assert await page.locator("#limit").inner_text() == "500"
    assert await page.locator("#preview").inner_text() == draft

    await fill(page, "x" * 501)
    assert await page.locator("#count").inner_text() == "501"
    assert "over" in (await page.get_attribute("#counter", "class") or "")
    over = await page.locator("#counter").evaluate("e => getComputedStyle(e).color")
    # Links count 23 and @user@server counts as @user, as Mastodon counts them.
    tricky = "@deniz@mastodon.social bakıyoruz https://acme.example/siparis/123?x=1 🙏🏽"
    await fill(page, tricky)
    assert await page.locator("#count").inner_text() == str(
        services.composer.measure("mastodon", tricky, "fedi").length)
    assert "over" not in (await page.get_attribute("#counter", "class") or "")
    assert await page.locator("#counter").evaluate("e => getComputedStyle(e).color") != over

    reply = draft + " {{ 7*7 }} <b>teşekkürler</b>"
    await fill(page, reply)
    assert await page.locator("#preview").inner_text() == reply
    assert await page.locator("#preview b").count() == 0
    async with page.expect_navigation():
        await page.click("#send")
    assert "clock stopped" in await page.locator("#notice").inner_text()
    assert await page.locator("#countdown").count() == 0
    assert (await page.locator("#clock-stopped").inner_text()).endswith(" early")
    [posted] = upstream.posted
    assert posted["body"]["status"] == f"@ali {reply}"
    assert problems == []
    await context.close()


async def test_copy_and_mark_responded_where_the_source_cannot_send(
        browser: Browser, site: tuple[Any, Any]) -> None:
    client, _ = site
    [mention_id] = await pushed(client, mention("w-1", "Where is my refund?", channel="web",
                                            handle="form-1"))
    context, page, problems = await signed_in(browser, client)
    await context.grant_permissions(["clipboard-read", "clipboard-write"],
                                    origin=str(client.make_url("/")).rstrip("/"))
    await page.goto(str(client.make_url(f"/mentions/{mention_id}")))
    assert await page.locator("#send").count() == 0
    assert "webhook" in await page.locator("#cannot-send").inner_text()
    assert await page.locator("#limit").count() == 0  # e-mail and web forms: no limit

    await page.select_option("#intent", "thanks")
    await expect(page.locator("#reply-text")).not_to_have_value("")
    answer = await page.input_value("#reply-text") + "\nDeniz, Customer Care"
    await fill(page, answer)
    async with page.expect_navigation():
        await page.click("#copy-and-mark")
    assert await page.evaluate("navigator.clipboard.readText()") == answer
    assert await page.locator("#status").inner_text() == "responded"
    assert await page.locator("#countdown").count() == 0
    assert (await page.locator("#clock-stopped").inner_text()).startswith("answered")
    response_item = page.locator("#timeline li.item-response").first
    assert "Deniz, Customer Care" in await response_item.inner_text()
    assert problems == []
    await context.close()


async def test_hostile_mentions_are_inert_on_the_page_and_in_the_preview(
        browser: Browser, site: tuple[Any, Any]) -> None:
    client, _ = site
    [mention_id] = await pushed(client, {
        **mention("h-1", BIG, handle="mallory", name="<img src=x onerror=alert(1)>"),
        "url": "javascript:window.__pwned=3"})
    context, page, problems = await signed_in(browser, client)
    await page.goto(str(client.make_url(f"/mentions/{mention_id}")))

    stored = await (await client.get(f"/api/v1/mentions/{mention_id}", headers=AUTH)).json()
    assert len(stored["text"]) >= 20_000  # what ingest keeps of the 50 kB
    shown = await page.locator("#mention-text").inner_text()
    assert shown == stored["text"]
    assert shown.startswith("<script>window.__pwned=1</script><img src=x")
    assert "{{ 7*7 }}" in shown and "مرحبا" in shown and "🙏🏽" in shown
    assert await page.locator("#the-mention img, #the-mention script").count() == 0
    assert await page.locator('a[href^="javascript"]').count() == 0
    assert await page.locator("#original").count() == 0
    assert "<img src=x" in await page.locator("#author").inner_text()

    await fill(page, HOSTILE)
    assert await page.locator("#preview").inner_text() == HOSTILE
    assert await page.locator("#preview img, #preview script").count() == 0
    await page.select_option("#intent", "apology")  # the draft uses the hostile name
    await expect(page.locator("#reply-text")).not_to_have_value(HOSTILE)
    drafted = await page.input_value("#reply-text")
    assert "49" not in drafted
    assert await page.locator("#preview").inner_text() == drafted
    assert await page.locator("#preview img").count() == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert problems == []
    await context.close()
