"""The queue page as the server renders it for a signed-in user: filters kept in the URL,
pages, the live rows fragment, the away toggle and the live event stream."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from listener.app import build_services, init_app
from listener.live import LIVE
from listener.models import Customer, Mention
from listener.web import live_events
from tests.conftest import MONDAY_10, make_config
from tests.web.logins import login_as
from tests.web.test_api import AUTH, SECRET, mention, push

ROW_ID = re.compile(r'<tr class="mention [^"]*" data-id="(\d+)"')
SOURCES = [
    {"id": "site-form", "kind": "webhook", "secret": SECRET},
    {"id": "shop-form", "kind": "webhook", "secret": SECRET, "channel": "email"},
]
TWO_HOURS = {"policies": [{"name": "2h", "match": {}, "first_response": "2h", "at_risk": "30m"}]}


def shown(html: str) -> list[int]:
    return [int(found) for found in ROW_ID.findall(html)]


async def page(client: Any, url: str, status: int = 200) -> str:
    response = await client.get(url)
    html = await response.text()
    assert response.status == status, (url, html[:2000])
    return html


@pytest.fixture
async def queue(aiohttp_client: Any, db_url: str, clock: Any, enricher: Any) -> Any:
    """Four open mentions over two sources, three channels, two languages, one VIP
    customer; signed in as John (agent john)."""
    services = build_services(make_config(db_url, sources=SOURCES), clock=clock,
                              enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    web = [mention("w-en", "Where is my invoice? <b>urgent</b>", channel="web", handle="eng",
                   name="Eve <i>N</i>"),
           mention("w-tr", "Merhaba, İADE ne zaman yapılacak? Faturam nerede", channel="web",
                   handle="tur", name="Türkan"),
           mention("t-tr", "ŞİKAYETİM var: kargo hâlâ gelmedi", channel="twitter",
                   handle="kargocu", name="Kerem")]
    web[0]["author"]["followers"] = 12345
    web[1]["lang"] = web[2]["lang"] = "tr"
    assert (await push(client, web)).status == 202
    shop = mention("s-1", "Order 100% broken_item *again*", channel="email", handle="shopper")
    assert (await push(client, [shop], source="shop-form")).status == 202
    async with services.store.write() as session:
        await session.execute(update(Customer).where(Customer.id.in_(
            Mention.__table__.select().with_only_columns(Mention.customer_id)
            .where(Mention.external_id == "t-tr").scalar_subquery())).values(segment="vip"))
    client.token = await login_as(client, services, role="agent", agent_id="john", name="john")
    client.services = services
    return client


async def test_the_queue_needs_a_signed_in_user(queue: Any) -> None:
    queue.session.cookie_jar.clear()
    for path in ("/", "/queue/rows", "/events"):
        response = await queue.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next=")


async def test_rows_show_what_an_agent_needs_and_hostile_text_stays_text(queue: Any) -> None:
    html = await page(queue, "/")
    assert shown(html) == [1, 2, 3, 4]  # one deadline, one priority: arrival order
    assert "&lt;b&gt;urgent&lt;/b&gt;" in html and "<b>urgent</b>" not in html
    assert "Eve &lt;i&gt;N&lt;/i&gt;" in html and "@eng" in html
    assert "12,345 followers" in html  # reach
    assert "vip" in html  # the customer's segment
    assert 'data-deadline="2026-11-23T15:00:00+00:00"' in html  # 18:00 Istanbul, in UTC
    assert "8h 00m left" in html and "due 23 Nov 18:00" in html  # in the configured zone
    assert "4 open" in html and "0 breached" in html
    assert '<script src="/static/queue.js"' in html and "<style" not in html
    assert 'style="' not in html and "onclick" not in html


async def test_filters_narrow_the_rows_and_stay_in_the_form(queue: Any) -> None:
    expectations = {
        "/?channel=web": [1, 2],
        "/?source=shop-form": [4],
        "/?assignee=john": [1, 4],
        "/?assignee=mine": [1, 4],
        "/?assignee=unassigned": [2],
        "/?assignee=ayse": [3],
        "/?lang=tr": [2, 3],
        "/?segment=vip": [3],
        "/?state=on_track": [1, 2, 3, 4],
        "/?state=breached": [],
        "/?channel=web&lang=tr": [2],
    }
    for url, ids in expectations.items():
        html = await page(queue, url)
        assert shown(html) == ids, url
    html = await page(queue, "/?channel=web&lang=tr")
    assert '<option value="web" selected>' in html and '<option value="tr" selected>' in html
    assert "1 match the filters" in html
    assert "Nothing open matches these filters." in await page(queue, "/?state=breached")


async def test_text_search_ignores_case_and_turkish_letters(queue: Any) -> None:
    searches = {
        "iade": [2], "İade": [2], "IADE": [2],  # the text says İADE
        "şikayet": [3], "sikayet": [3], "SIKAYETIM": [3],  # ŞİKAYETİM
        "hala gelmedi": [3],  # hâlâ
        "FATURAM": [2], "kerem": [3], "@shopper": [], "shopper": [4],  # handle and name
        "100%": [4], "broken_item": [4], "*again*": [4],  # wildcards are literal
        "%": [4], "_": [4], "*": [4], "[": [], ".*": [],
    }
    for text, ids in searches.items():
        html = await page(queue, "/?" + f"q={text}".replace("%", "%25").replace("&", "%26")
                          .replace("+", "%2B").replace("#", "%23"))
        assert shown(html) == ids, text


async def test_bad_filter_values_get_a_message_not_an_error(queue: Any) -> None:
    html = await page(queue, "/?state=late", status=400)
    assert "SLA state must be one of: on_track, at_risk, breached, none." in html
    assert shown(html) == []
    assert "Page must be a whole number" in await page(queue, "/?page=0", status=400)
    assert "Page must be a whole number" in await page(queue, "/?page=" + "9" * 5000,
                                                       status=400)
    assert "too long" in await page(queue, "/?q=" + "x" * 201, status=400)
    assert "control characters" in await page(queue, "/?channel=web%00", status=400)
    html = await page(queue, '/?assignee="><script>alert(1)</script>')
    assert "<script>alert(1)</script>" not in html
    assert "&#34;&gt;&lt;script&gt;" in html  # kept in the form, as text
    assert "There is no page 7." in await page(queue, "/?page=7")

    queue.session.cookie_jar.clear()
    await login_as(queue, queue.services, role="lead", name="lena")  # no agent of her own
    html = await page(queue, "/?assignee=mine", status=400)
    assert "Your login is not linked to an agent" in html
    assert 'id="my-status"' not in html  # nobody to mark away


async def test_the_rows_fragment_is_the_live_part_for_the_same_filters(queue: Any) -> None:
    html = await page(queue, "/queue/rows?channel=web")
    assert html.lstrip().startswith('<div id="queue-live"')
    assert "<html" not in html and "<form" not in html
    assert shown(html) == [1, 2]
    assert 'data-fragment="/queue/rows?channel=web"' in html
    full = await page(queue, "/?channel=web")
    assert 'data-fragment="/queue/rows?channel=web"' in full
    assert "SLA state must be" in await page(queue, "/queue/rows?state=x", status=400)


async def test_an_agent_marks_themselves_away_and_back(queue: Any) -> None:
    html = await page(queue, "/?channel=web")
    assert "You are available." in html
    form = {"status": "away", "csrf_token": queue.token, "next": "/?channel=web"}
    refused = await queue.post("/queue/status", data={**form, "csrf_token": "forged"})
    assert refused.status == 403
    response = await queue.post("/queue/status", data=form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/?channel=web"
    agents = (await (await queue.get("/api/v1/agents", headers=AUTH)).json())["items"]
    assert {a["id"]: a["status"] for a in agents}["john"] == "away"
    html = await page(queue, "/")
    assert "You are away" in html
    assert shown(await page(queue, "/?assignee=john")) == []  # his work was handed on
    back = await queue.post("/queue/status", data={**form, "status": "available"})
    assert back.status == 200 and "You are available." in await back.text()
    bad = await queue.post("/queue/status", data={**form, "status": "asleep"})
    assert bad.status == 400


async def test_live_events_name_changed_mentions_and_never_their_text(queue: Any) -> None:
    stream = await queue.get("/events")
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")

    async def next_data() -> dict[str, Any]:
        while True:
            line = (await asyncio.wait_for(stream.content.readline(), 10)).decode()
            if line.startswith("data: ") and line.strip() != "data: {}":
                return json.loads(line[len("data: "):])

    await queue.post("/api/v1/mentions/2/assign", json={"agent": "ayse"}, headers=AUTH)
    assert await next_data() == {"kind": "mention", "ids": [2], "what": "assigned"}
    await queue.post("/api/v1/mentions/1/respond", json={}, headers=AUTH)
    assert await next_data() == {"kind": "mention", "ids": [1], "what": "answered"}
    await push(queue, [mention("w-9", "<script>secret text</script>", channel="web")])
    assert await next_data() == {"kind": "mention", "ids": [], "what": "new"}
    assert shown(await page(queue, "/?assignee=ayse")) == [2, 3]
    assert 1 not in shown(await page(queue, "/"))  # answered: out of the open queue

    closing = asyncio.create_task(queue.server.close())  # shutdown ends the stream
    rest = await asyncio.wait_for(stream.content.read(), 20)
    assert b"secret text" not in rest
    await asyncio.wait_for(closing, 20)


async def test_a_hand_off_is_announced_with_the_mentions_it_moved(queue: Any) -> None:
    async with queue.app[LIVE].subscribe() as events:
        form = {"status": "away", "csrf_token": queue.token}
        assert (await queue.post("/queue/status", data=form)).status == 200
        event = await asyncio.wait_for(anext(events), 10)
    assert event == {"kind": "mention", "ids": [1, 4], "what": "assigned"}  # John's two


async def test_the_event_stream_sends_heartbeats(queue: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(live_events, "HEARTBEAT", 0.05)
    stream = await queue.get("/events")
    lines = []
    while ": ping" not in lines:
        lines.append((await asyncio.wait_for(stream.content.readline(), 10)).decode().strip())
    assert lines[:3] == ["event: ready", "data: {}", "retry: 2000"]  # then heartbeats
    stream.close()


async def test_thousands_of_open_mentions_page_by_deadline(aiohttp_client: Any, db_url: str,
                                                          clock: Any, enricher: Any) -> None:
    services = build_services(make_config(db_url, sla=TWO_HOURS), clock=clock,
                              enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    now = MONDAY_10.astimezone(UTC)
    count = 5_000
    rows = [{"source": "site-form", "channel": "web" if i % 2 else "email",
             "external_id": f"bulk-{i}", "text": f"bulk mention {i}", "created_at": now,
             "ingested_at": now, "status": "new", "priority": "normal", "sentiment": 0.0,
             "alerts_fired": 0,
             # Inserted in reverse deadline order: only the ORDER BY puts them right.
             "deadline_at": now + timedelta(minutes=count - i - 2_000),
             "at_risk_at": now + timedelta(minutes=count - i - 2_030)}
            for i in range(count)]
    async with services.store.write() as session:
        await session.execute(insert(Mention), rows)
    await login_as(client, services, role="agent", agent_id="ayse", name="ayse")
    by_deadline = list(range(count, 0, -1))  # ids are 1..5000, latest deadline first

    first = await page(client, "/")
    assert shown(first) == by_deadline[:50]
    assert "5,000 open" in first and "Page 1 of 100" in first
    assert 'href="/?page=2"' in first and 'rel="prev"' not in first
    middle = await page(client, "/?page=37")
    assert shown(middle) == by_deadline[36 * 50:37 * 50]
    last = await page(client, "/?page=100")
    assert shown(last) == by_deadline[-50:] and 'rel="next"' not in last

    breached = [i for i in by_deadline if rows[i - 1]["deadline_at"] <= now]
    html = await page(client, "/?state=breached&channel=web&page=2")
    web_breached = [i for i in breached if rows[i - 1]["channel"] == "web"]
    assert shown(html) == web_breached[50:100]
    assert f"{len(web_breached):,} match the filters" in html
    assert "href=\"/?channel=web&amp;state=breached&amp;page=3\"" in html
    assert "href=\"/?channel=web&amp;state=breached\"" in html  # back to page 1
    at_risk = await page(client, "/?state=at_risk")
    assert "30 match the filters" in at_risk and 'data-state="breached"' not in at_risk


async def test_times_are_shown_in_the_configured_zone_and_turkish(queue: Any) -> None:
    response = await queue.get("/", headers={"Accept-Language": "tr-TR,tr"})
    html = await response.text()
    assert "8 sa 00 dk kaldı" in html and "son tarih 23 Kas 18:00" in html
    assert "4 açık" in html and "Europe/Istanbul" in html
    assert 'data-left="{t} kaldı"' in html and "{n} sa" in html  # what queue.js writes
    clock = queue.services.clock
    clock.advance(timedelta(hours=9))
    html = await page(queue, "/")
    assert "overdue by 1h 00m" in html and 'data-state="breached"' in html
    assert "4 breached" in html


async def test_queue_page_shows_a_failing_source(aiohttp_client: Any, db_url: str, clock: Any,
                                                 enricher: Any) -> None:
    from connectors.base import SourceError
    from tests.test_coordinator import ScriptedConnector, setup

    connector = ScriptedConnector([])
    services = await setup(db_url, clock, enricher, connector)
    await services.coordinator.poll("demo")
    client = await aiohttp_client(init_app(services, background=False))
    await login_as(client, services, role="agent", agent_id="ayse", name="ayse")
    assert "demo ok" in await (await client.get("/")).text()
    connector.fail_with = SourceError("502 Bad Gateway <from upstream>")
    clock.advance(timedelta(minutes=3))
    await services.coordinator.poll("demo")
    html = await (await client.get("/")).text()
    assert "source-failing" in html
    assert "502 Bad Gateway &lt;from upstream&gt;" in html
    assert "last success 3m ago" in html


async def test_each_row_opens_its_mention_page(queue: Any) -> None:
    html = await page(queue, "/?lang=tr")
    assert 'href="/mentions/2"' in html and 'href="/mentions/3"' in html
    assert "ŞİKAYETİM var" in await page(queue, "/mentions/3")


async def test_an_app_review_shows_its_stars_in_the_queue(aiohttp_client: Any,
                                                          services: Any) -> None:
    client = await aiohttp_client(init_app(services, background=False))
    await login_as(client, services, role="agent")
    review = mention("r-1", "Güzel uygulama ama giriş yapamıyorum", channel="app_review")
    review["rating"] = 2
    await push(client, [review, mention("t-1", "Kargom nerede?")])
    html = await page(client, "/")
    assert html.count("★★☆☆☆") == 1 and "2/5" in html
