"""The mention page as an agent and a lead use it, on SQLite and PostgreSQL: what it shows,
and every action changing what the user sees next. Replies go to a real (fake) Mastodon
instance on 127.0.0.1; the webhook source cannot send, so it is the copy-and-mark path."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from sqlalchemy import select, update

from listener.app import build_services, init_app
from listener.models import Author, Customer, Mention, OutboxAlert
from listener.store.queries import queue
from listener.web.i18n import catalogue
from listener.web.mention_page import NOTICES, PROBLEMS
from tests.conftest import make_config
from tests.connectors.test_mastodon import TOKEN, FakeMastodon, answer, fixture, status
from tests.web.logins import login_as
from tests.web.test_api import AUTH, SECRET, mention, push

HOSTILE = ("<script>window.__pwned=1</script>{{ 7*7 }} <img src=x onerror=alert(1)> "
           "\u202eRTL\u202c שלום 🙏")


@pytest.fixture
def upstream() -> FakeMastodon:
    upstream = FakeMastodon()
    upstream.statuses = [status(1, "Siparişim hâlâ gelmedi, rezalet! #acme", minute=30)]
    return upstream


@pytest.fixture
async def app(aiohttp_client: Any, aiohttp_server: Any, upstream: FakeMastodon, db_url: str,
              clock: Any, enricher: Any) -> tuple[Any, Any]:
    return await start(aiohttp_client, aiohttp_server, upstream, db_url, clock, enricher)


async def start(aiohttp_client: Any, aiohttp_server: Any, upstream: FakeMastodon,
                db_url: str, clock: Any, enricher: Any) -> tuple[Any, Any]:
    """Listener on a real port with the site-form webhook (cannot reply) and a Mastodon
    source that may send replies to `upstream`. Returns the client and the services."""
    server = await aiohttp_server(upstream.app())
    config = make_config(db_url, sources=[
        {"id": "site-form", "kind": "webhook", "secret": SECRET},
        {"id": "fedi", "kind": "mastodon", "hashtag": "acme", "interval": "60s",
         "base_url": str(server.make_url("")), "access_token": TOKEN, "send_replies": True}])
    services = build_services(config, clock=clock, enricher=enricher)
    client = await aiohttp_client(init_app(services, background=False))
    return client, services


def web_form(ident: str, **extra: Any) -> dict[str, Any]:
    """An English web-form mention: the router gives it to john; due 18:00 (same-day)."""
    return mention(ident, "Where is my refund? I paid two weeks ago.", channel="web",
                   handle=f"form-{ident}", **extra)


async def pushed(client: Any, *items: dict[str, Any]) -> list[int]:
    response = await push(client, list(items))
    assert response.status == 202, await response.text()
    return (await response.json())["ids"]


async def open_page(client: Any, mention_id: int, query: str = "",
                    status_code: int = 200) -> HTMLParser:
    response = await client.get(f"/mentions/{mention_id}{query}")
    assert response.status == status_code, await response.text()
    return HTMLParser(await response.text())


def text_of(page: HTMLParser, selector: str) -> str:
    node = page.css_first(selector)
    assert node is not None, f"{selector} is not on the page"
    return " ".join(node.text().split())


async def post(client: Any, path: str, token: str | None, **fields: str) -> Any:
    data = {**fields, **({"csrf_token": token} if token is not None else {})}
    return await client.post(path, data=data, allow_redirects=False)


async def follow(client: Any, response: Any) -> HTMLParser:
    """After an action: back on the page, with the notice."""
    assert response.status == 303, await response.text()
    return HTMLParser(await (await client.get(response.headers["Location"])).text())


async def stored(services: Any, mention_id: int) -> Mention:
    async with services.store.read() as session:
        found = await session.get(Mention, mention_id)
    assert found is not None
    return found


async def test_page_shows_the_mention_customer_clock_and_history_escaped(
        app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, {
        **mention("t-1", HOSTILE, handle="mallory", email="mallory@example.com",
                  name="Mal <b>Lory</b>"),
        "url": "javascript:alert(1)"})
    async with services.store.write() as session:
        row = await session.get(Mention, mention_id)
        customer = await session.get(Customer, row.customer_id)
        customer.segment, customer.lifetime_value = "vip", 12345.5
        await session.execute(update(Author).values(followers=48210))
    await login_as(client, services, role="agent", agent_id="ayse", name="ayse")

    response = await client.get(f"/mentions/{mention_id}")
    html = await response.text()
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "<b>Lory</b>" not in html
    page = HTMLParser(html)
    assert text_of(page, "#mention-text") == " ".join(HOSTILE.split())  # literal, not run
    assert page.css_first("#original") is None  # javascript: is never a link
    assert not [a for a in page.css("a") if "javascript" in (a.attributes.get("href") or "")]
    assert "Mal <b>Lory</b> @mallory" in text_of(page, "#author")
    assert text_of(page, "#reach") == "48,210 followers"
    assert text_of(page, "#customer-segment") == "vip"
    assert text_of(page, "#customer-value") == "12,345.50"
    assert "email · mallory@example.com" in text_of(page, "#identities")
    assert text_of(page, "#policy") == "social-same-day"
    # Posted 09:30 Monday: the same-day deadline is 18:00 Istanbul time, 8 h from 10:00.
    assert text_of(page, "#deadline") == "Mon 23 Nov 18:00 Europe/Istanbul"
    assert text_of(page, "#countdown") == "8h 00m left"
    steps = text_of(page, "#sla-steps")
    assert "before cutoff 16:00 on a business day" in steps and "breach 2026-11-23 18:00" in steps
    history = [text_of(row, "td:nth-child(2)") for row in page.css("#history tbody tr")]
    assert history[-1] == "ingested" and len(history) == 2  # newest first


async def test_http_links_open_the_original_safely(app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, mention("t-1"))
    await login_as(client, services)
    link = (await open_page(client, mention_id)).css_first("#original")
    assert link.attributes["href"] == "https://x.com/musteri1/status/t-1"
    assert link.attributes["rel"] == "noopener noreferrer"


async def test_timeline_is_cross_channel_newest_first_and_pages_older(
        app: tuple[Any, Any], clock: Any) -> None:
    client, services = app
    base = clock.now() - timedelta(hours=30)
    ids = await pushed(client, *[
        mention(f"e-{n}", f"message number {n}", channel="web" if n % 2 else "twitter",
                handle=f"h{n}", email="same@example.com", created_at=base + timedelta(hours=n))
        for n in range(24)])
    newest = ids[-1]
    token = await login_as(client, services, name="ayse", agent_id="ayse")
    await follow(client, await post(client, f"/mentions/{ids[3]}/respond", token,
                                    note="called back"))

    page = await open_page(client, newest)
    items = [" ".join(i.text().split()) for i in page.css("#timeline li.item")]
    assert len(items) == 20
    assert items[0].startswith("response") and "called back" in items[0] and "ayse" in items[0]
    assert "message number 23" in items[1] and "this mention" in items[1]
    assert "message number 22" in items[2] and "· web" in items[1] and "· twitter" in items[2]
    older_link = page.css_first("#older").attributes["href"]
    assert older_link.startswith(f"/mentions/{newest}?older=")
    older = await open_page(client, newest, older_link.removeprefix(f"/mentions/{newest}")
                            .split("#")[0])
    texts = [" ".join(i.text().split()) for i in older.css("#timeline li.item")]
    assert len(texts) == 5 and "message number 0" in texts[-1]
    broken = await open_page(client, newest, "?older=not-a-cursor")
    assert len(broken.css("#timeline li.item")) == 20  # a cursor it never gave: page one
    assert "message number 23" in broken.css("#timeline li.item")[1].text()


async def test_claim_takes_the_mention_and_the_history_names_the_user(
        app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, web_form("w-1"))
    token = await login_as(client, services, role="agent", agent_id="ayse", name="ayse.k")
    page = await follow(client, await post(client, f"/mentions/{mention_id}/claim", token))
    assert text_of(page, "#notice") == "You took this mention."
    assert text_of(page, "#assignee") == "ayse"
    first = page.css("#history tbody tr")[0]
    assert text_of(first, "td:nth-child(2)") == "assigned"
    assert text_of(first, "td:nth-child(3)") == "ayse.k"
    assert (await stored(services, mention_id)).assignee == "ayse"


async def test_claim_without_an_agent_id_says_why_and_changes_nothing(
        app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, web_form("w-1"))
    token = await login_as(client, services, role="agent", agent_id=None, name="temp")
    response = await post(client, f"/mentions/{mention_id}/claim", token)
    assert response.status == 422
    page = HTMLParser(await response.text())
    assert "not linked to an agent" in text_of(page, "#error")
    assert (await stored(services, mention_id)).assignee == "john"  # the router's choice


async def test_a_lead_assigns_an_agent_may_not_and_csrf_is_required(
        app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, web_form("w-1"))
    path = f"/mentions/{mention_id}/assign"
    token = await login_as(client, services, role="agent", agent_id="john", name="john")
    assert (await open_page(client, mention_id)).css_first("#assign-form") is None
    assert (await post(client, path, token, agent="ayse")).status == 403
    assert (await stored(services, mention_id)).assignee == "john"
    client.session.cookie_jar.clear()

    token = await login_as(client, services, role="lead", name="lead-lale")
    assert (await post(client, path, None, agent="ayse")).status == 403  # no CSRF token
    assert (await post(client, path, "forged", agent="ayse")).status == 403
    assert (await stored(services, mention_id)).assignee == "john"
    page = await follow(client, await post(client, path, token, agent="ayse"))
    assert text_of(page, "#assignee") == "ayse"
    assert "lead-lale" in text_of(page, "#history tbody tr:first-child")
    unknown = await post(client, path, token, agent="nobody")
    assert unknown.status == 422
    assert "not configured" in text_of(HTMLParser(await unknown.text()), "#error")
    page = await follow(client, await post(client, path, token, agent=""))
    assert text_of(page, "#assignee") == "unassigned"


async def test_notes_and_offers_join_the_customer_timeline(app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, web_form("w-1"))
    token = await login_as(client, services, name="Ayşe")
    path = f"/mentions/{mention_id}/note"
    page = await follow(client, await post(client, path, token, kind="offer",
                                           text="10% off next order <b>code</b>"))
    assert text_of(page, "#notice") == "Offer added to the customer's timeline."
    top = page.css("#timeline li.item")[0]
    assert "item-offer" in top.attributes["class"]
    assert "10% off next order <b>code</b>" in top.text() and "Ayşe" in top.text()
    empty = await post(client, path, token, kind="note", text="   ")
    assert empty.status == 422
    assert text_of(HTMLParser(await empty.text()), "#error") == "Write the note first."


async def test_ignore_needs_a_reason_then_leaves_the_queue_and_alerts_stop(
        app: tuple[Any, Any], clock: Any) -> None:
    client, services = app
    [mention_id] = await pushed(client, web_form("w-1"))
    token = await login_as(client, services, name="ayse")
    path = f"/mentions/{mention_id}/ignore"
    missing = await post(client, path, token, reason=" ")
    assert missing.status == 422
    assert text_of(HTMLParser(await missing.text()), "#error") == "Say why it is ignored."
    assert (await stored(services, mention_id)).status == "assigned"

    page = await follow(client, await post(client, path, token, reason="bot, 40 copies"))
    assert text_of(page, "#status") == "ignored"
    assert page.css_first("#countdown") is None and page.css_first("#ignore-form") is None
    latest = page.css("#history tbody tr")[0]
    assert text_of(latest, "td:nth-child(2)") == "ignored"
    assert text_of(latest, "td:nth-child(4)") == "bot, 40 copies"
    async with services.store.read() as session:
        assert await queue(session, clock.now()) == []
    clock.advance(timedelta(days=3))  # far past the deadline
    await services.engine.fire_due(clock.now())
    async with services.store.read() as session:
        alerts = list(await session.scalars(
            select(OutboxAlert).where(OutboxAlert.mention_id == mention_id)))
    assert alerts == []
    again = await post(client, path, token, reason="twice")
    assert again.status == 409


async def test_mark_responded_stops_the_clock_and_shows_how_early(
        app: tuple[Any, Any], clock: Any) -> None:
    client, services = app
    [mention_id] = await pushed(client, web_form("w-1"))  # due at closing time, 18:00
    token = await login_as(client, services, name="ayse")
    assert text_of(await open_page(client, mention_id), "#countdown") == "8h 00m left"
    clock.advance(timedelta(hours=6, minutes=55))
    path = f"/mentions/{mention_id}/respond"
    page = await follow(client, await post(client, path, token, note="called back"))
    assert text_of(page, "#notice") == "Marked responded: the clock stopped."
    assert page.css_first("#countdown") is None
    assert text_of(page, "#clock-stopped") == "answered 1h 05m early"
    assert "called back" in text_of(page, "#history tbody tr:first-child")
    again = await post(client, path, token)
    assert again.status == 409
    assert "already answered" in text_of(HTMLParser(await again.text()), "#error")


async def test_composer_drafts_from_a_template_in_the_chosen_language(
        app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, {**mention("t-1", "Kargom nerede {{ 7*7 }}"),
                                         "lang": "tr"})
    await login_as(client, services, name="ayse", agent_id="ayse")
    page = await open_page(client, mention_id, "?intent=apology")
    drafted = page.css_first("#reply-text").text()
    assert drafted and "{{" not in drafted and "49" not in drafted
    assert page.css_first("#reply-lang option[selected]").attributes["value"] == "tr"
    assert text_of(page, "#count") == str(services.composer.measure("twitter", drafted).length)
    assert text_of(page, "#limit") == "280"

    english = await client.get(f"/mentions/{mention_id}/draft?intent=thanks&lang=en")
    body = await english.json()
    assert english.status == 200 and body["lang"] == "en" and body["limit"] == 280
    assert body["text"] != drafted and "Thank" in body["text"]
    assert body["length"] == services.composer.measure("twitter", body["text"]).length
    unknown = await client.get(f"/mentions/{mention_id}/draft?intent=nope")
    assert unknown.status == 404
    assert (await client.get("/mentions/999999/draft?intent=thanks")).status == 404


async def test_a_source_that_cannot_send_offers_copy_and_mark_responded(
        app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, web_form("w-1"))
    token = await login_as(client, services, name="ayse")
    page = await open_page(client, mention_id)
    assert page.css_first("#send") is None
    assert "webhook sources cannot post replies" in text_of(page, "#cannot-send")
    assert page.css_first("#copy-and-mark") is not None
    reply = "Dear Ali, we called you back <b>today</b>."
    answered = await follow(client, await post(client, f"/mentions/{mention_id}/reply", token,
                                               text=reply, how="copied"))
    assert text_of(answered, "#notice") == "Reply copied and the mention marked responded."
    assert text_of(answered, "#status") == "responded"
    assert answered.css_first("#countdown") is None
    response_item = answered.css("#timeline li.item-response")[0]
    assert reply in response_item.text()


async def test_send_posts_through_mastodon_and_stops_the_clock(
        app: tuple[Any, Any], upstream: FakeMastodon) -> None:
    client, services = app
    assert await services.coordinator.poll("fedi") == "ok"
    mention_id = (await (await client.get("/api/v1/mentions", headers=AUTH)).json())[
        "items"][0]["id"]
    token = await login_as(client, services, name="Ayşe", agent_id="ayse")
    page = await open_page(client, mention_id)
    assert page.css_first("#send") is not None and page.css_first("#copy-and-mark") is None
    path = f"/mentions/{mention_id}/reply"

    upstream.post_answers = [answer(422, fixture("unprocessable.json"))]
    refused = await post(client, path, token, text="Hemen bakıyoruz {{ 7*7 }}", how="send")
    assert refused.status == 422
    again = HTMLParser(await refused.text())
    assert "nothing was sent" in text_of(again, "#error")
    assert again.css_first("#reply-text").text() == "Hemen bakıyoruz {{ 7*7 }}"  # kept
    assert again.css_first("#countdown") is not None
    assert (await stored(services, mention_id)).first_response_at is None

    too_long = await post(client, path, token, text="x" * 501, how="send")
    assert too_long.status == 422
    assert "allows 500" in text_of(HTMLParser(await too_long.text()), "#error")
    assert upstream.posted == []

    sent = await follow(client, await post(client, path, token,
                                           text="Hemen bakıyoruz {{ 7*7 }}", how="send"))
    assert text_of(sent, "#notice") == "Reply posted on the platform: the clock stopped."
    [posted] = upstream.posted
    assert posted["body"]["status"] == "@ali Hemen bakıyoruz {{ 7*7 }}"
    assert sent.css_first("#countdown") is None
    assert re.fullmatch(r"answered \S+( \S+)? early", text_of(sent, "#clock-stopped"))
    assert text_of(sent, "#history tbody tr:first-child td:nth-child(2)") == "replied"
    assert text_of(sent, "#history tbody tr:first-child td:nth-child(3)") == "Ayşe"


async def test_unknown_mentions_are_404(app: tuple[Any, Any]) -> None:
    client, services = app
    token = await login_as(client, services)
    await open_page(client, 424242, status_code=404)
    assert (await post(client, "/mentions/424242/respond", token)).status == 404


async def test_the_page_speaks_turkish(app: tuple[Any, Any]) -> None:
    client, services = app
    [mention_id] = await pushed(client, web_form("w-1"))
    await login_as(client, services)
    response = await client.get(f"/mentions/{mention_id}",
                                headers={"Accept-Language": "tr-TR,tr;q=0.9"})
    page = HTMLParser(await response.text())
    assert text_of(page, "#countdown") == "8h 00m kaldı"
    assert page.css_first("#countdown").attributes["data-over"] == "{d} gecikti"
    assert text_of(page, "#mark-responded") == "Yanıtlandı olarak işaretle"


def test_every_message_the_page_builds_in_python_has_a_turkish_translation() -> None:
    """Template strings are checked by test_i18n; these are the notices, the problems and
    the clock's words, which live in Python."""
    turkish = catalogue("tr")
    clock_words = re.findall(r'_\("([^"]+)"', Path("listener/web/mention_view.py").read_text())
    used = {*NOTICES.values(), *PROBLEMS.values(), *clock_words}
    assert len(clock_words) >= 5
    assert sorted(text for text in used if text not in turkish) == []
