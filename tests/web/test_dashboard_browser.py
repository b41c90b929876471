"""The queue page as the team sees it: rendered by a real Chromium, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright

from connectors.webhook import sign
from listener.app import build_services, init_app
from tests.conftest import IST, make_config

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
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
TURKISH = "Faturam İki kez kesildi, iade ne zaman? ğüşıöçİ"
ISO_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
POSTED = datetime(2026, 11, 23, 9, 30, tzinfo=IST)  # Monday; the clock fixture is 10:00

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


def mention(ident: str, channel: str, text: str, handle: str, name: str, lang: str) -> Any:
    return {
        "id": ident,
        "text": text,
        "channel": channel,
        "lang": lang,
        "created_at": POSTED.isoformat(),
        "url": f"https://example.com/{ident}",
        "author": {"handle": handle, "name": name},
    }


# Pushed latest deadline first, so only ordering by deadline puts them in the right order.
MENTIONS = [
    mention("tw-1", "twitter", HOSTILE, "mallory", "Mallory", "en"),  # due 18:00
    mention("web-1", "web", "My invoice is wrong, please help", "jane", "Jane Doe", "en"),  # 13:30
    mention("em-1", "email", TURKISH, "sukru", "Şükrü Öztürk", "tr"),  # due 11:30
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def queue_url(aiohttp_client: Any, db_url: str, clock: Any, enricher: Any) -> str:
    """The app on a real port, with the three mentions pushed through the signed webhook."""
    services = build_services(make_config(db_url, sla=POLICIES), clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    body = json.dumps(MENTIONS, ensure_ascii=False).encode()
    response = await client.post(
        "/api/v1/webhooks/site-form",
        data=body,
        headers={"X-Listener-Signature": sign(SECRET, body), "Content-Type": "application/json"},
    )
    assert response.status == 202, await response.text()
    assert (await response.json())["stored"] == 3
    return str(client.make_url("/"))


async def cells(row: Locator) -> dict[str, str]:
    return {
        "left": (await row.locator("td.left").inner_text()).strip(),
        "channel": (await row.locator(".chan").inner_text()).strip(),
        "author": (await row.locator("td.author").inner_text()).strip(),
        "text": (await row.locator("td.text").inner_text()).strip(),
        "assignee": (await row.locator("td.assignee").inner_text()).strip(),
        "state": await row.get_attribute("data-state") or "",
    }


async def queue_rows(page: Page) -> list[dict[str, str]]:
    rows = page.locator("#queue tbody tr.mention")
    return [await cells(rows.nth(i)) for i in range(await rows.count())]


async def test_queue_page_shows_mentions_most_urgent_first_and_marks_breaches(
    browser: Browser, queue_url: str, clock: Any, tmp_path: Path
) -> None:
    page = await browser.new_page()
    failures: list[str] = []
    page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failures.append(r.url) if r.status >= 400 else None)
    response = await page.goto(queue_url)
    assert response is not None and response.status == 200

    rows = await queue_rows(page)
    assert [r["channel"] for r in rows] == ["email", "web", "twitter"]  # earliest deadline first
    email, web, twitter = rows

    assert email["left"] == "1h 30m left"
    assert web["left"] == "3h 30m left"
    assert twitter["left"] == "8h 00m left"
    for row in rows:
        assert row["state"] == "on_track"
        assert row["left"].endswith(" left")
        assert not ISO_TIMESTAMP.search(row["left"])

    assert "Şükrü Öztürk" in email["author"] and "@sukru" in email["author"]
    assert "Jane Doe" in web["author"] and "@jane" in web["author"]
    assert TURKISH in email["text"]
    assert email["assignee"] == "unassigned"  # nobody takes Turkish e-mail
    assert web["assignee"] == "john"
    assert twitter["assignee"] in ("ayse", "john")

    # Hostile text is shown as text and runs nothing.
    assert HOSTILE in twitter["text"]
    hostile_row = page.locator("#queue tbody tr.mention").nth(2)
    assert await hostile_row.locator("img").count() == 0
    assert await hostile_row.locator("script").count() == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    counts = await page.locator("#counts").inner_text()
    assert "3 open" in counts and "0 breached" in counts and "1 unassigned" in counts

    # 12:00: the e-mail (due 11:30) is overdue; the others are still on track.
    clock.advance(timedelta(hours=2))
    await page.reload()
    rows = await queue_rows(page)
    assert [r["channel"] for r in rows] == ["email", "web", "twitter"]
    assert rows[0]["state"] == "breached"
    assert rows[0]["left"].startswith("overdue")
    assert rows[0]["left"] == "overdue by 30m"
    assert [r["state"] for r in rows[1:]] == ["on_track", "on_track"]
    assert rows[1]["left"] == "1h 30m left"
    first_left = page.locator("#queue tbody tr.mention").nth(0).locator("td.left")
    breached_colour = await first_left.evaluate("e => getComputedStyle(e).backgroundColor")
    on_track_colour = await (
        page.locator("#queue tbody tr.mention").nth(1).locator("td.left")
    ).evaluate("e => getComputedStyle(e).backgroundColor")
    assert breached_colour != on_track_colour  # the breach stands out, not only in the DOM
    assert "1 breached" in await page.locator("#counts").inner_text()
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    shot = tmp_path / "queue.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 1000
    assert failures == []
    await page.close()
