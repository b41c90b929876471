"""The queue page as the team sees it in a real Chromium, on SQLite and PostgreSQL: most
urgent first, and kept current live (new, assigned, answered; the countdown turning amber
and red) without a reload."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from connectors.webhook import sign
from listener.app import build_services, init_app
from listener.pipeline.normalize import clean_text
from tests.conftest import IST, MONDAY_10, make_config
from tests.web.logins import PASSWORD, create_user

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRET = "s3cret-hook"
AUTH = {"Authorization": "Bearer test-token"}
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
TURKISH = "Faturam İki kez kesildi, iade ne zaman? ğüşıöçİ"
ISO_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
POSTED = datetime(2026, 11, 23, 9, 30, tzinfo=IST)  # Monday; the clock fixture is 10:00
AMBER, RED = "rgb(255, 179, 0)", "rgb(198, 40, 40)"
WAIT_MS = 30_000  # a guard against hanging, not a timing assertion

# Business-time policies so the three mentions get three different deadlines.
POLICIES = {
    "policies": [
        {"name": "email-2h", "match": {"channels": ["email"]}, "first_response": "2h",
         "at_risk": "30m"},
        {"name": "web-4h", "match": {"channels": ["web"]}, "first_response": "4h",
         "at_risk": "30m"},
        {"name": "social-same-day", "match": {"channels": ["twitter"]},
         "first_response": "same_day", "cutoff": "16:00", "at_risk": "1h"},
    ]
}  # fmt: skip
# Web mentions due in seconds, so a test sees them turn amber, then red, in real time.
FAST = {
    "policies": [
        {"name": "web-fast", "match": {"channels": ["web"]}, "first_response": "12s",
         "at_risk": "6s"},
        {"name": "email-2h", "match": {"channels": ["email"]}, "first_response": "2h",
         "at_risk": "30m"},
    ]
}  # fmt: skip
# Script, template syntax, right-to-left override, emoji and 50 kB in one mention.
NASTY = (HOSTILE + " {{7*7}} ${7*7} مرحبا \u202eevil\u202c 🔥😡 " + "ş" * 50_000)


def mention(ident: str, channel: str, text: str, handle: str, name: str, lang: str,
            created_at: datetime = POSTED) -> Any:
    return {
        "id": ident,
        "text": text,
        "channel": channel,
        "lang": lang,
        "created_at": created_at.isoformat(),
        "url": f"https://example.com/{ident}",
        "author": {"handle": handle, "name": name},
    }


# Pushed latest deadline first, so only ordering by deadline puts them in the right order.
MENTIONS = [
    mention("tw-1", "twitter", HOSTILE, "mallory", "Mallory", "en"),  # due 18:00
    mention("web-1", "web", "My invoice is wrong, please help", "jane", "Jane Doe", "en"),  # 13:30
    mention("em-1", "email", TURKISH, "sukru", "Şükrü Öztürk", "tr"),  # due 11:30
]


class RunningClock:
    """Starts at Monday 10:00 and runs at real speed, like the browser's own clock."""

    def __init__(self, start: datetime):
        self.start = start
        self.began = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def push(client: Any, items: list[Any]) -> None:
    body = json.dumps(items, ensure_ascii=False).encode()
    response = await client.post(
        "/api/v1/webhooks/site-form",
        data=body,
        headers={"X-Listener-Signature": sign(SECRET, body), "Content-Type": "application/json"},
    )
    assert response.status == 202, await response.text()
    assert (await response.json())["stored"] == len(items)


async def app_client(aiohttp_client: Any, db_url: str, clock: Any, enricher: Any,
                     sla: Any) -> Any:
    services = build_services(make_config(db_url, sla=sla), clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    await create_user(services, "ayse", "agent", "ayse")
    return client


async def signed_in_page(browser: Browser, client: Any, path: str = "/") -> tuple[Page, list]:
    """A tab signed in as Ayşe through the login form, collecting console errors, failed
    requests and CSP violations."""
    page = await browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)
    await page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective));")
    await page.goto(str(client.make_url("/login")))
    await page.fill("input[name=name]", "ayse")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_url("**/")
    if path != "/":
        await page.goto(str(client.make_url(path)))
    return page, problems


async def cells(row: Locator) -> dict[str, str]:
    return {
        "left": (await row.locator("td.left .countdown").inner_text()).strip(),
        "channel": (await row.locator(".chan").inner_text()).strip(),
        "author": (await row.locator("td.author").inner_text()).strip(),
        "text": (await row.locator("td.text .body").text_content() or "").strip(),
        "assignee": (await row.locator("td.assignee").inner_text()).strip(),
        "state": await row.get_attribute("data-state") or "",
    }


async def queue_rows(page: Page) -> list[dict[str, str]]:
    rows = page.locator("#queue tbody tr.mention")
    return [await cells(rows.nth(i)) for i in range(await rows.count())]


async def test_queue_page_shows_mentions_most_urgent_first_and_marks_breaches(
    browser: Browser, aiohttp_client: Any, db_url: str, clock: Any, enricher: Any,
    tmp_path: Path
) -> None:
    client = await app_client(aiohttp_client, db_url, clock, enricher, POLICIES)
    await push(client, MENTIONS)
    page, failures = await signed_in_page(browser, client)
    await page.clock.set_fixed_time(clock.now())  # the server's clock stands still too
    await page.reload()

    rows = await queue_rows(page)
    assert [r["channel"] for r in rows] == ["email", "web", "twitter"]  # earliest deadline first
    email, web, twitter = rows

    assert email["left"] == "1h 30m left"
    assert web["left"] == "3h 30m left"
    assert twitter["left"] == "8h 00m left"
    for row in rows:
        assert row["state"] == "on_track"
        assert not ISO_TIMESTAMP.search(row["left"])

    assert "Şükrü Öztürk" in email["author"] and "@sukru" in email["author"]
    assert "Jane Doe" in web["author"] and "@jane" in web["author"]
    assert email["text"] == TURKISH
    assert email["assignee"] == "unassigned"  # nobody takes Turkish e-mail
    assert web["assignee"] == "john"
    assert twitter["assignee"] in ("ayse", "john")

    # Hostile text is shown as text and runs nothing.
    assert twitter["text"] == HOSTILE
    hostile_row = page.locator("#queue tbody tr.mention").nth(2)
    assert await hostile_row.locator("img").count() == 0
    assert await hostile_row.locator("script").count() == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    counts = await page.locator("#counts").inner_text()
    assert "3 open" in counts and "0 breached" in counts and "1 unassigned" in counts

    # 12:00: the e-mail (due 11:30) is overdue; the others are still on track.
    clock.advance(timedelta(hours=2))
    await page.clock.set_fixed_time(clock.now())
    await page.reload()
    rows = await queue_rows(page)
    assert [r["channel"] for r in rows] == ["email", "web", "twitter"]
    assert rows[0]["state"] == "breached"
    assert rows[0]["left"] == "overdue by 30m"
    assert [r["state"] for r in rows[1:]] == ["on_track", "on_track"]
    assert rows[1]["left"] == "1h 30m left"
    lefts = page.locator("#queue tbody tr.mention td.left")
    colour = "e => getComputedStyle(e).backgroundColor"
    assert await lefts.nth(0).evaluate(colour) == RED  # the breach stands out
    assert await lefts.nth(1).evaluate(colour) != RED
    assert "1 breached" in await page.locator("#counts").inner_text()
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    shot = tmp_path / "queue.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 1000
    assert failures == [] and await page.evaluate("window.__csp") == []
    await page.close()


async def test_the_queue_updates_live_without_reloading(
    browser: Browser, aiohttp_client: Any, db_url: str, enricher: Any
) -> None:
    clock = RunningClock(MONDAY_10)
    client = await app_client(aiohttp_client, db_url, clock, enricher, FAST)
    page, problems = await signed_in_page(browser, client)
    emails, email_problems = await signed_in_page(browser, client, "/?channel=email")
    assert "No open mentions" in await page.inner_text("#queue-live")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url)
            if frame == page.main_frame else None)
    await page.evaluate("window.__same_page = true")
    await expect(page.locator("#live-status")).to_have_text("Live", timeout=WAIT_MS)

    # A mention arrives through the signed webhook: it appears, with a notice.
    await push(client, [mention("live-1", "web", NASTY, "nasty", "<b>Nasty</b> ‮", "en",
                                created_at=clock.now())])
    row = page.locator('#queue tr.mention[data-id="1"]')
    await row.wait_for(timeout=WAIT_MS)
    assert await page.inner_text("#live-notice") == "1 new"
    assert (await cells(row))["assignee"] == "john"
    first_left = (await cells(row))["left"]
    assert first_left.endswith("s left")  # due in seconds: the countdown shows them

    # Hostile text arrived as text: nothing ran, no template was evaluated.
    text = await row.locator("td.text .body").text_content() or ""
    assert text == clean_text(NASTY)  # as stored: NFC, cut at 20,000 characters
    assert await row.locator("img, script").count() == 0
    assert "<b>Nasty</b>" in await row.locator("td.author").inner_text()
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    # The e-mail tab keeps its own filter: the web mention does not show up there.
    await push(client, [mention("mail-1", "email", "Where is my refund?", "ann", "Ann", "en",
                                created_at=clock.now())])
    await emails.locator('#queue tr.mention[data-id="2"]').wait_for(timeout=WAIT_MS)
    assert await emails.locator('#queue tr.mention[data-id="1"]').count() == 0

    # Assigned through the API: the assignee cell changes in place.
    response = await client.post("/api/v1/mentions/1/assign", json={"agent": "ayse"},
                                 headers=AUTH)
    assert response.status == 200
    await expect(row.locator("td.assignee")).to_have_text("ayse", timeout=WAIT_MS)

    # The countdown runs on its own: amber when at risk, red once the deadline passes.
    left = row.locator("td.left")
    await expect(left.locator(".countdown")).not_to_have_text(first_left, timeout=WAIT_MS)
    await expect(row).to_have_attribute("data-state", "at_risk", timeout=WAIT_MS)
    assert await left.evaluate("e => getComputedStyle(e).backgroundColor") == AMBER
    await expect(row).to_have_attribute("data-state", "breached", timeout=WAIT_MS)
    assert await left.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    assert (await left.locator(".countdown").inner_text()).startswith("overdue by ")

    # Answered: it leaves the open queue.
    response = await client.post("/api/v1/mentions/1/respond", json={}, headers=AUTH)
    assert response.status == 200
    await row.wait_for(state="detached", timeout=WAIT_MS)
    assert await page.locator("#queue tr.mention").count() == 1  # the e-mail

    assert navigations == [] and await page.evaluate("window.__same_page") is True
    for tab, found in ((page, problems), (emails, email_problems)):
        assert found == [] and await tab.evaluate("window.__csp") == []
    await page.close()
    await emails.close()


async def test_an_agent_marks_themselves_away_in_the_page(
    browser: Browser, aiohttp_client: Any, db_url: str, clock: Any, enricher: Any
) -> None:
    client = await app_client(aiohttp_client, db_url, clock, enricher, POLICIES)
    await push(client, MENTIONS)
    page, problems = await signed_in_page(browser, client, "/?assignee=mine")
    mine = await queue_rows(page)
    assert mine and all(row["assignee"] == "ayse" for row in mine)
    await page.click("#my-status button[type=submit]")
    assert "You are away" in await page.inner_text("#my-status-text")
    assert page.url.endswith("/?assignee=mine")  # back where they were
    assert await page.locator("#queue tr.mention").count() == 0  # handed on
    await page.click("#my-status button[type=submit]")
    assert "You are available." in await page.inner_text("#my-status-text")
    assert problems == [] and await page.evaluate("window.__csp") == []
    await page.close()

