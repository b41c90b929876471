"""`GET /api/v1/reports/share-of-voice` as a client uses it: mentions pushed through the
signed webhook, figures checked against the test's own count, dates validated, on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

import pytest

from listener.app import init_app
from listener.web.openapi import document
from tests.conftest import IST, make_config
from tests.web.test_api import AUTH, SECRET, mention, push

REPORT = "/api/v1/reports/share-of-voice"
FEED_SECRET = "rival-feed-secret"
SENTIMENTS = ("negative", "neutral", "positive")


@pytest.fixture
def config(db_url: str) -> Any:
    return make_config(
        db_url,
        sources=[{"id": "site-form", "kind": "webhook", "secret": SECRET},
                 {"id": "rival-feed", "kind": "webhook", "secret": FEED_SECRET,
                  "brand": "rival"}],
        brand_keywords=["acme"],
        competitors=[{"name": "rival", "handles": {"twitter": ["rival"]},
                      "keywords": ["rival kargo"]},
                     {"name": "Paketçi", "keywords": ["paketçi"]}])


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=IST)


# (id, brand, text, channel, posted); the brand is what the test expects, not an input.
FORM = [
    ("f1", "ours", "@acme siparişim hâlâ gelmedi, rezalet!", "twitter", at(20, 9)),
    ("f2", "ours", "Acme teşekkürler, harika hizmet", "web", at(20, 23, 59)),
    ("f3", "rival", "Rival kargo paketimi kaybetti, berbat", "forum", at(21, 0, 1)),
    ("f4", "rival", "@rival where is my parcel?", "twitter", at(21, 11)),
    ("f5", "Paketçi", "PAKETÇİ çok hızlı, teşekkürler!", "mastodon", at(21, 12)),
    ("f6", "ours", "Rival kargo mu Acme mi? İkisi de rezalet", "forum", at(22, 10)),
    ("f7", "Paketçi", "Paketçi ile gönderdim, yarın gelir", "forum", at(22, 2, 59)),
    ("f8", "ours", "Rival kargo gibi siz de mi geç kalacaksınız?", "web", at(23, 9)),  # form
    ("f9", "rival", "Yeni kampanyamız başladı!", "twitter", at(21, 15)),  # rival's own post
]
FEED = [  # a rival-only source: whatever the text says
    ("r1", "rival", "Acme gibi değil, çok kötü bir deneyim", "web", at(22, 18)),
    ("r2", "rival", "Terrible experience, never again", "reddit", at(19, 8)),
]


async def push_all(client: Any) -> None:
    def body(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [mention(key, text, channel=channel, created_at=posted,
                        handle="rival" if key == "f9" else f"user-{key}")
                for key, _, text, channel, posted in rows]

    for rows, secret, source in ((FORM, SECRET, "site-form"),
                                 (FEED, FEED_SECRET, "rival-feed")):
        response = await push(client, body(rows), secret=secret, source=source)
        assert response.status == 202, await response.text()


def mood(score: float) -> str:
    return "negative" if score <= -0.3 else "positive" if score >= 0.3 else "neutral"


def expected(enricher: Any, first: date, last: date) -> dict[str, Any]:
    """The report as the test computes it from the rows above (the rival's own post is not
    counted), in the API's rounding."""
    counted = [(brand, channel, posted.date(), enricher.enrich(text).sentiment)
               for key, brand, text, channel, posted in FORM + FEED
               if key != "f9" and first <= posted.date() <= last]

    def part(rows: list[tuple[str, str, date, float]]) -> dict[str, Any]:
        by_brand: dict[str, list[float]] = defaultdict(list)
        for brand, _, _, score in rows:
            by_brand[brand].append(score)
        brands = []
        for brand in ("ours", "rival", "Paketçi"):
            scores = by_brand[brand]
            brands.append({
                "brand": brand, "mentions": len(scores),
                "share": round(100 * len(scores) / len(rows), 2) if rows else None,
                "sentiment": {**{name: sum(mood(s) == name for s in scores)
                                 for name in SENTIMENTS},
                              "mean": round(sum(scores) / len(scores), 3) if scores else None},
            })
        return {"mentions": len(rows), "brands": brands}

    def channels(rows: list[tuple[str, str, date, float]]) -> list[dict[str, Any]]:
        return [{"channel": name, **part([r for r in rows if r[1] == name])}
                for name in sorted({r[1] for r in rows})]

    days = [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]
    return {
        "from": first.isoformat(), "to": last.isoformat(), "timezone": "Europe/Istanbul",
        "brands": ["ours", "rival", "Paketçi"],
        "total": part(counted),
        "channels": channels(counted),
        "days": [{"date": day.isoformat(), **part([r for r in counted if r[2] == day]),
                  "channels": channels([r for r in counted if r[2] == day])} for day in days],
    }


def assert_same(got: Any, want: Any, where: str = "") -> None:
    """Equal, except means within the third decimal (sums may add up in another order)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(want, float) and where.endswith(".mean"):
        assert got == pytest.approx(want, abs=0.0011), where
    else:
        assert got == want, where


async def get(client: Any, status: int, **params: str) -> Any:
    response = await client.get(REPORT, params=params, headers=AUTH)
    assert response.status == status, await response.text()
    return await response.json()


async def test_the_report_counts_each_brand_as_the_test_does(client: Any, enricher: Any
                                                            ) -> None:
    await push_all(client)
    week = await get(client, 200, **{"from": "2026-11-19", "to": "2026-11-23"})
    assert_same(week, expected(enricher, date(2026, 11, 19), date(2026, 11, 23)))
    shares = [b["share"] for b in week["total"]["brands"]]
    assert week["total"]["mentions"] == 10 and sum(shares) == pytest.approx(100, abs=0.02)
    # Local days: 23:59 on the 20th and 00:01 on the 21st fall on their own days.
    one_day = await get(client, 200, **{"from": "2026-11-21", "to": "2026-11-21"})
    assert_same(one_day, expected(enricher, date(2026, 11, 21), date(2026, 11, 21)))
    assert [b["mentions"] for b in one_day["total"]["brands"]] == [0, 2, 1]
    assert one_day["total"]["brands"][0]["share"] == 0.0
    assert one_day["total"]["brands"][0]["sentiment"]["mean"] is None


async def test_without_dates_the_report_covers_the_last_seven_days(client: Any,
                                                                  enricher: Any) -> None:
    await push_all(client)
    default = await get(client, 200)
    assert (default["from"], default["to"]) == ("2026-11-17", "2026-11-23")  # the clock's day
    assert_same(default, expected(enricher, date(2026, 11, 17), date(2026, 11, 23)))
    empty = await get(client, 200, **{"from": "2026-10-01", "to": "2026-10-02"})
    assert empty["total"] == {"mentions": 0, "brands": [
        {"brand": brand, "mentions": 0, "share": None,
         "sentiment": {"negative": 0, "neutral": 0, "positive": 0, "mean": None}}
        for brand in ("ours", "rival", "Paketçi")]}
    assert empty["channels"] == [] and len(empty["days"]) == 2


async def test_mentions_say_whose_brand_they_are_about(client: Any) -> None:
    await push_all(client)
    response = await client.get("/api/v1/mentions", params={"limit": "50"}, headers=AUTH)
    items = {m["external_id"]: m for m in (await response.json())["items"]}
    want = {key: brand for key, brand, *_ in FORM + FEED}
    assert {key: m["brand"] for key, m in items.items()} == want
    for key, brand in want.items():
        if brand != "ours":
            assert items[key]["status"] == "ignored" and items[key]["sla"] is None


@pytest.mark.parametrize(("params", "message"), [
    ({"from": "2026-11-31"}, "from is not a real date: 2026-11-31"),
    ({"to": "23.11.2026"}, "to must be a date as YYYY-MM-DD, got '23.11.2026'"),
    ({"from": "2026-11-23", "to": "2026-11-22"}, "from (2026-11-23) is after to (2026-11-22)"),
    ({"from": "2025-01-01", "to": "2026-11-22"}, "a report covers at most 366 days"),
    ({"from": "<script>"}, "from must be a date as YYYY-MM-DD, got '<script>'"),
])
async def test_dates_that_cannot_be_used_are_a_clear_400(client: Any, params: dict[str, str],
                                                         message: str) -> None:
    body = await get(client, 400, **params)
    assert body["error"]["code"] == "bad_request"
    assert body["error"]["message"].startswith(message)


async def test_the_report_needs_a_token(client: Any) -> None:
    response = await client.get(REPORT)
    assert response.status == 401


async def test_answers_match_the_openapi_document(client: Any) -> None:
    from tests.web.test_openapi import Contract  # imports this module: not at the top

    await push_all(client)
    api = Contract(client, document())
    await share_of_voice_calls(api)
    assert {(p, m, s) for p, m, s in api.seen} == {
        (REPORT, "get", "200"), (REPORT, "get", "400")}


async def share_of_voice_calls(api: Any) -> None:
    """The report's answers, checked against the document (tests/web/test_openapi.py
    calls this in its walk over every declared answer)."""
    report = await api.call("get", REPORT, 200, params={"from": "2026-11-17",
                                                          "to": "2026-11-23"})
    assert report["brands"][0] == "ours" and len(report["days"]) == 7
    error = await api.call("get", REPORT, 400, params={"from": "2026-11-24",
                                                         "to": "2026-11-23"})
    assert error["error"]["code"] == "bad_request"
