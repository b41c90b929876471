"""The lead's team view: load, status, today's answers and compliance; away/available;
moving an agent's open mentions, each move recorded with the lead as actor."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from listener.app import init_app
from tests.web.logins import login_as
from tests.web.test_api import AUTH, mention, push


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    client = await aiohttp_client(init_app(services, background=False))
    yield client
    await client.close()


async def api(client: Any, method: str, path: str, body: Any = None) -> Any:
    response = await client.request(method, path, json=body, headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


async def give(client: Any, mention_id: int, agent: str | None) -> None:
    await api(client, "POST", f"/api/v1/mentions/{mention_id}/assign", {"agent": agent})


def row_cells(html: str, row_id: str) -> list[str]:
    row = HTMLParser(html).css_first(f"tr#{row_id}")
    assert row is not None, f"no row {row_id}"
    return [" ".join(cell.text().split()) for cell in row.css("td")]


async def test_team_view_shows_load_status_answers_today_and_compliance(
        client: Any, services: Any, clock: Any) -> None:
    await push(client, [
        mention("t-1", "Kargom <script>alert(1)</script> nerede?", handle="hostile<b>x</b>"),
        mention("t-2", "Faturam yanlış"),
        mention("w-1", "Where is my order?", channel="web", handle="eng"),
        mention("w-2", "Refund please", channel="web", handle="eng2"),
    ])
    for mention_id, agent in ((1, "ayse"), (2, "ayse"), (3, "john"), (4, "john")):
        await give(client, mention_id, agent)
    clock.advance(timedelta(minutes=30))  # 10:30, posted 09:30: an hour to answer
    await api(client, "POST", "/api/v1/mentions/2/respond", {"by": "ayse"})
    clock.advance(timedelta(minutes=30))  # 11:00: two hours
    await api(client, "POST", "/api/v1/mentions/3/respond", {"by": "john"})
    await api(client, "POST", "/api/v1/agents/john/status", {"status": "away"})

    await login_as(client, services, role="lead", name="lena")
    response = await client.get("/team")
    html = await response.text()
    assert response.status == 200
    ayse = row_cells(html, "agent-ayse")
    assert ayse[1] == "available" and ayse[2].startswith("on shift")
    assert ayse[3] == "1 / 25" and ayse[4] == "1" and ayse[5] == "1h 00m"
    john = row_cells(html, "agent-john")
    assert john[1] == "away" and john[4] == "1" and john[5] == "1h 30m"
    assert "Mark available" in john[6] and "Mark away" in ayse[6]
    # Deadlines are 18:00 today: answered ones are in time, the rest not due yet.
    table = HTMLParser(html).css_first("table#compliance")
    assert table is not None
    lines = [[" ".join(c.text().split()) for c in r.css("td")] for r in table.css("tbody tr")]
    assert ["twitter", "100.0% 1 of 1", "100.0% 1 of 1"] in lines
    assert ["web", "100.0% 1 of 1", "100.0% 1 of 1"] in lines
    assert ["all channels", "100.0% 2 of 2", "100.0% 2 of 2"] in lines
    # hostile text from a mention renders as text
    assert "<script>alert(1)</script>" not in html and "hostile<b>" not in html
    assert "Kargom &lt;script&gt;alert(1)&lt;/script&gt; nerede?" in html
    assert "@hostile&lt;b&gt;x&lt;/b&gt;" in html
    assert ' style="' not in html
    assert re.findall(r"<script[^>]*>\s*</script>", html) == [
        '<script src="/static/team.js"></script>'], "no inline script"


async def test_the_team_view_is_for_leads(client: Any, services: Any) -> None:
    response = await client.get("/team", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login")
    token = await login_as(client, services, role="agent", agent_id="ayse", name="ayse")
    assert (await client.get("/team")).status == 403
    response = await client.post("/team/reassign", data={
        "csrf_token": token, "agent": "ayse", "to": "john", "mention": "1"})
    assert response.status == 403
    response = await client.post("/team/agents/ayse/status",
                                 data={"csrf_token": token, "status": "away"})
    assert response.status == 403
    agents = await api(client, "GET", "/api/v1/agents")
    assert {a["id"]: a["status"] for a in agents["items"]}["ayse"] == "available"


async def test_lead_moves_selected_mentions_of_one_agent(client: Any, services: Any) -> None:
    await push(client, [mention(f"t-{n}", f"Sorun {n}", handle=f"m{n}") for n in range(1, 5)])
    for mention_id in (1, 2, 3):
        await give(client, mention_id, "ayse")
    await give(client, 4, "john")
    token = await login_as(client, services, role="lead", name="lena")
    page = await (await client.get("/team")).text()
    held = HTMLParser(page).css_first("details#held-ayse")
    assert held is not None
    assert [box.attributes["value"] for box in held.css("input[name=mention]")] == ["1", "2", "3"]

    response = await client.post("/team/reassign", allow_redirects=False, data=[
        ("csrf_token", token), ("agent", "ayse"), ("to", "john"),
        ("mention", "1"), ("mention", "2"), ("mention", "4")])
    assert response.status == 303
    assert response.headers["Location"] == "/team?moved=2&skipped=1"
    result = await (await client.get(response.headers["Location"])).text()
    assert "Moved 2 mention(s); 1 skipped" in result
    assignees = {m["id"]: m["assignee"] for m in
                 (await api(client, "GET", "/api/v1/mentions"))["items"]}
    assert assignees == {1: "john", 2: "john", 3: "ayse", 4: "john"}
    detail = await api(client, "GET", "/api/v1/mentions/1")
    last = detail["events"][-1]
    assert (last["kind"], last["actor"], last["data"]) == ("assigned", "lena",
                                                           {"agent": "john"})

    response = await client.post("/team/reassign", allow_redirects=False, data=[
        ("csrf_token", token), ("agent", "ayse"), ("to", ""), ("mention", "3")])
    assert response.headers["Location"] == "/team?moved=1&skipped=0"
    three = await api(client, "GET", "/api/v1/mentions/3")
    assert (three["assignee"], three["status"]) == (None, "new")
    assert three["events"][-1]["actor"] == "lena"


async def test_a_bulk_move_that_cannot_be_done_says_why(client: Any, services: Any) -> None:
    await push(client, mention("t-1", "Sorun"))
    await give(client, 1, "ayse")
    token = await login_as(client, services, role="lead", name="lena")
    cases = [
        ([("to", "john")], "Select at least one mention to move."),
        ([("to", "nobody"), ("mention", "1")], "Pick an agent from the list."),
        ([("to", "ayse"), ("mention", "1")], "Pick another agent than the one who has them."),
    ]
    for fields, message in cases:
        response = await client.post("/team/reassign", data=[
            ("csrf_token", token), ("agent", "ayse"), *fields])
        assert response.status == 200 and message in await response.text()
    missing_token = await client.post("/team/reassign", data=[
        ("agent", "ayse"), ("to", "john"), ("mention", "1")])
    assert missing_token.status == 403
    assert (await api(client, "GET", "/api/v1/mentions/1"))["assignee"] == "ayse"


async def test_marking_an_agent_away_hands_their_work_off_like_the_api(
        client: Any, services: Any) -> None:
    await push(client, [mention("t-1", "My order is late again and nobody answers the phone"),
                        mention("t-2", "The refund has still not arrived on my card",
                                handle="b")])
    await give(client, 1, "ayse")
    await give(client, 2, "ayse")
    token = await login_as(client, services, role="lead", name="lena")
    response = await client.post("/team/agents/ayse/status", allow_redirects=False,
                                 data={"csrf_token": token, "status": "away"})
    assert response.status == 303 and response.headers["Location"] == "/team"
    agents = {a["id"]: a for a in (await api(client, "GET", "/api/v1/agents"))["items"]}
    assert agents["ayse"]["status"] == "away" and agents["ayse"]["open"] == 0
    assert agents["john"]["open"] == 2  # john also takes English tweets, and is on shift
    moved = await api(client, "GET", "/api/v1/mentions/1")
    assert moved["assignee"] == "john" and moved["events"][-1]["actor"] == "lena"
    assert "handoff: ayse away" in moved["events"][-1]["data"]["reason"]
    assert row_cells(await (await client.get("/team")).text(), "agent-ayse")[1] == "away"

    response = await client.post("/team/agents/ayse/status",
                                 data={"csrf_token": token, "status": "available"})
    assert response.status == 200
    agents = {a["id"]: a for a in (await api(client, "GET", "/api/v1/agents"))["items"]}
    assert agents["ayse"]["status"] == "available"
    unknown = await client.post("/team/agents/nobody/status",
                                data={"csrf_token": token, "status": "away"})
    assert unknown.status == 404
    wrong = await client.post("/team/agents/ayse/status",
                              data={"csrf_token": token, "status": "asleep"})
    assert wrong.status == 400


@pytest.mark.browser
async def test_lead_selects_all_moves_them_and_marks_an_agent_away_in_a_browser(
        client: Any, services: Any) -> None:
    from playwright.async_api import async_playwright

    from tests.web.logins import PASSWORD, create_user
    from tests.web.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS

    await push(client, [mention(f"t-{n}", f"Kargo {n} <b>nerede</b>", handle=f"m{n}")
                        for n in range(1, 4)])
    for mention_id in (1, 2, 3):
        await give(client, mention_id, "ayse")
    await create_user(services, "lena", "lead")
    base = str(client.make_url("/"))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text)
                    if message.type == "error" else None)
            await page.goto(base + "login")
            await page.fill("input[name=name]", "lena")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form button[type=submit]")
            await page.goto(base + "team")
            await page.click("#held-ayse summary")
            await page.check("#held-ayse input.select-all")
            assert await page.locator("#held-ayse input[name=mention]:checked").count() == 3
            await page.uncheck("#pick-3")
            assert await page.locator("#held-ayse input.select-all").is_checked() is False
            await page.select_option("#held-ayse select[name=to]", "john")
            await page.click("#held-ayse button[type=submit]")
            assert "Moved 2 mention(s); 0 skipped" in await page.inner_text("#move-result")
            assert await page.locator("#held-ayse tbody tr").count() == 1
            await page.click("#agent-ayse button[type=submit]")
            assert await page.inner_text("#agent-ayse td.status-away") == "away"
            assert await page.locator("#held-ayse").count() == 0  # handed off
            assert problems == []
        finally:
            await browser.close()
    assignees = {m["id"]: m["assignee"] for m in
                 (await api(client, "GET", "/api/v1/mentions"))["items"]}
    assert assignees[1] == assignees[2] == "john" and assignees[3] != "ayse"


async def test_each_agent_shows_only_their_most_urgent_open_mentions(
        client: Any, services: Any, clock: Any) -> None:
    """A backlog of thousands must not make the team page load every open mention: a
    page lists each agent's most urgent ones and says how many they hold."""
    from listener.reports import open_assigned

    # Posted a day apart: the older ones are overdue, the newer due tonight.
    await push(client, [mention(f"u-{n}", f"Sorun {n}", handle=f"u{n}",
                                created_at=clock.now() - timedelta(days=n % 3))
                        for n in range(1, 6)])
    for mention_id in (1, 2, 3, 4):
        await give(client, mention_id, "ayse")
    await give(client, 5, "john")
    listed = (await api(client, "GET", "/api/v1/mentions?limit=10"))["items"]
    ayses = sorted((m for m in listed if m["assignee"] == "ayse"),
                   key=lambda m: (m["sla"]["deadline_at"], m["id"]))
    async with services.store.read() as session:
        held = await open_assigned(session, per_agent=2)
    assert {agent: [m.id for m, _ in rows] for agent, rows in held.items()} == \
        {"ayse": [m["id"] for m in ayses[:2]], "john": [5]}
    assert [m["id"] for m in ayses[:2]] != [1, 2]  # urgency, not arrival, decides

    await login_as(client, services, role="lead", name="lena")
    page = HTMLParser(await (await client.get("/team")).text())
    summary = page.css_first("details#held-ayse summary")
    assert summary is not None and "4 open" in summary.text()
