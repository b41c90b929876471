"""The reports page and its CSVs: the figures computed independently from the same
generated mentions, a date range, hostile names kept inert, leads only, Turkish."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from listener.app import init_app
from listener.web.charts import Bar, Series, bar_chart, column_chart, line_chart
from listener.web.csv_export import safe_cell, to_csv
from listener.web.i18n import catalogue
from listener.web.reports_page import presets
from listener.web.team import MOVE_ERRORS
from tests.conftest import MONDAY_10
from tests.test_reports import (
    CHANNELS,
    answered_in,
    expected_compliance,
    generate,
    local_day,
    nearest_rank,
    seconds,
    store,
)
from tests.web.logins import login_as
from tests.web.test_api import AUTH, mention, push

WEB = Path(__file__).parents[2] / "listener" / "web"
HOSTILE_CHANNELS = ("=cmd|' /c calc'!a0", "<script>x</script>", "@sum(1+1)",
                    '+1,"2"', "-2+3")


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    client = await aiohttp_client(init_app(services, background=False))
    yield client
    await client.close()


async def csv_rows(client: Any, path: str) -> list[dict[str, str]]:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.content_type == "text/csv"
    text = (await response.read()).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


async def test_page_and_csvs_show_the_independently_computed_figures(
        client: Any, services: Any) -> None:
    specs = generate(MONDAY_10)
    await store(services, specs)
    await login_as(client, services, role="lead", name="lena")
    first, last = date(2026, 11, 14), date(2026, 11, 21)
    query = "from=2026-11-14&to=2026-11-21"
    response = await client.get(f"/reports?{query}")
    html = await response.text()
    assert response.status == 200

    overall = expected_compliance(specs, first, last, MONDAY_10, lambda s: "all")["all"]
    headline = HTMLParser(html).css_first("#sla .headline").text()
    assert f"{float(overall[3]):.1%}" in headline
    assert f"{overall[0]} of {overall[0] + overall[1] + overall[2]} in time" in headline

    for name, key in (("channel", lambda s: s.channel), ("agent", lambda s: s.agent),
                      ("policy", lambda s: s.policy)):
        rows = await csv_rows(client, f"/reports/sla-by-{name}.csv?{query}")
        expected = expected_compliance(specs, first, last, MONDAY_10, key)
        got = {row[name] or None: row for row in rows}
        assert set(got) == set(expected)
        for group, (met, late, breached, ratio) in expected.items():
            row = got[group]
            assert (int(row["met"]), int(row["missed"]), int(row["breached_unanswered"])) == (
                met, late, breached)
            assert float(row["compliance_pct"]) == round(float(ratio) * 100, 1)

    answered = answered_in(specs, first, last)
    rows = await csv_rows(client, f"/reports/first-response.csv?{query}")
    overall_row = next(r for r in rows if not r["channel"] and not r["day"])
    everything = [seconds(s) for s in answered]
    assert int(overall_row["answered"]) == len(everything)
    assert float(overall_row["p50_seconds"]) == nearest_rank(everything, 50)
    assert float(overall_row["p90_seconds"]) == nearest_rank(everything, 90)
    for row in rows:
        if row["channel"] and row["day"]:
            cell = [seconds(s) for s in answered if s.channel == row["channel"]
                    and local_day(s.responded).isoformat() == row["day"]]
            assert float(row["p90_seconds"]) == nearest_rank(cell, 90)
    assert {r["channel"] for r in rows} == {"", *CHANNELS}

    daily = await csv_rows(client, f"/reports/daily.csv?{query}")
    assert [row["day"] for row in daily] == [
        (first + timedelta(days=n)).isoformat() for n in range(8)]
    for row in daily:
        posted = [s for s in specs if not s.ignored
                  and local_day(s.created).isoformat() == row["day"]]
        assert int(row["mentions"]) == len(posted)
    negative = [row for row in daily if row["mean_sentiment"].startswith("-")]
    assert negative, "negative means stay numbers"

    distribution = await csv_rows(client, f"/reports/first-response-distribution.csv?{query}")
    assert sum(int(row["answered"]) for row in distribution) == len(everything)

    page = HTMLParser(html)
    assert len(page.css("svg.chart")) == 7
    assert page.css_first("#first-response svg.chart title").text() == \
        "First-response time per day"
    assert "nearest-rank" in html and "breached unanswered" in html
    assert f'href="/reports/daily.csv?{query}"' in html.replace("&amp;", "&")


async def test_hostile_channel_names_are_inert_on_the_page_and_in_csv(
        client: Any, services: Any, clock: Any) -> None:
    await push(client, [mention(f"h-{n}", f"Text {n} <img src=x onerror=alert(1)>",
                                channel=channel, handle=f"h{n}")
                        for n, channel in enumerate(HOSTILE_CHANNELS)])
    clock.advance(timedelta(hours=1))
    for mention_id in (1, 2, 3):
        response = await client.post(f"/api/v1/mentions/{mention_id}/respond", json={},
                                     headers=AUTH)
        assert response.status == 200
    clock.advance(timedelta(days=1))
    await login_as(client, services, role="lead", name="lena")
    html = await (await client.get("/reports")).text()
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<img" not in html
    assert not re.search(r"\sstyle=", html) and "<script" not in html
    assert not re.search(r"\son[a-z]+=", html)
    svg_titles = [t.text() for t in HTMLParser(html).css("svg.chart g title")]
    assert any("<script>x</script>" in title for title in svg_titles)  # parsed back as text

    escaped = ["'" + c if c[0] in "=+-@" else c for c in HOSTILE_CHANNELS]
    for name, expected in (("sla-by-channel", set(escaped)),
                           ("first-response", set(escaped[:3])),  # the answered ones
                           ("first-response-distribution", set(escaped[:3]))):
        response = await client.get(f"/reports/{name}.csv")
        text = (await response.read()).decode("utf-8-sig")
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert {cell for cell in cells if cell.lstrip("'") in HOSTILE_CHANNELS} == expected
        for cell in cells:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)
            if cell.startswith("-"):
                float(cell)  # only numbers may start with a minus


@pytest.mark.parametrize(("query", "message"), [
    ("from=2026-02-30&to=2026-03-01", "from is not a real date: 2026-02-30"),
    ("from=yesterday", "from must be a date as YYYY-MM-DD"),
    ("from=2026-11-20&to=2026-11-01", "from (2026-11-20) is after to (2026-11-01)"),
    ("from=2020-01-01&to=2026-01-01", "a report covers at most 366 days"),
    ("to=%3Cscript%3E", "to must be a date as YYYY-MM-DD, got &#39;&lt;script&gt;&#39;"),
])
async def test_an_unusable_range_is_a_clear_400(client: Any, services: Any, query: str,
                                                 message: str) -> None:
    await login_as(client, services, role="lead", name="lena")
    response = await client.get(f"/reports?{query}")
    html = await response.text()
    assert response.status == 400
    assert message in html and "This date range cannot be shown" in html
    assert "<script>" not in html
    assert (await client.get(f"/reports/daily.csv?{query}")).status == 400


async def test_reports_are_for_leads_and_name_only_known_exports(
        client: Any, services: Any) -> None:
    response = await client.get("/reports/daily.csv", allow_redirects=False)
    assert response.status == 303
    await login_as(client, services, role="agent", agent_id="ayse", name="ayse")
    assert (await client.get("/reports")).status == 403
    assert (await client.get("/reports/daily.csv")).status == 403
    client.session.cookie_jar.clear()
    await login_as(client, services, role="admin", name="root")
    assert (await client.get("/reports")).status == 200
    assert (await client.get("/reports/passwords.csv")).status == 404


async def test_reports_and_team_in_turkish(client: Any, services: Any) -> None:
    await login_as(client, services, role="lead", name="lena")
    turkish = {"Accept-Language": "tr-TR,tr;q=0.9"}
    html = await (await client.get("/reports", headers=turkish)).text()
    assert "SLA uyumu" in html and "İlk yanıt süresi" in html and "CSV indir" in html
    assert "Bu aralıkta süresi dolan bahsetme yok." in html
    bad = await (await client.get("/reports?from=2026-11-20&to=2026-11-01",
                                  headers=turkish)).text()
    assert "başlangıç (2026-11-20) bitişten (2026-11-01) sonra" in bad
    team = await (await client.get("/team", headers=turkish)).text()
    assert "Bugün yanıtlanan" in team and "Uzakta yap" in team and "müsait" in team


def test_every_ui_string_of_team_and_reports_has_a_turkish_entry() -> None:
    table = catalogue("tr")
    ours = json.loads((WEB / "locale" / "reports.tr.json").read_text(encoding="utf-8"))
    literal = re.compile(r'_\(\s*"((?:[^"\\]|\\.)*)"')
    sources = ["templates/reports.html", "templates/team.html", "reports_page.py", "team.py"]
    found = {m.group(1) for path in sources
             for m in literal.finditer((WEB / path).read_text(encoding="utf-8"))}
    range_errors = re.findall(r'RangeError\("([^"]+)"',
                              (WEB.parent / "reports.py").read_text(encoding="utf-8"))
    assert len(range_errors) == 4
    found |= set(range_errors) | set(MOVE_ERRORS.values())
    found |= {p["label"] for p in presets(date.today())}
    found |= {"none", "unassigned", "no policy", "available", "away"}
    assert len(found) > 80
    assert sorted(text for text in found if text not in table) == []
    for english, turkish in ours.items():  # same fields in both languages
        assert set(re.findall(r"\{(\w+)\}", english)) == set(re.findall(r"\{(\w+)\}", turkish))


def test_charts_escape_labels_and_carry_no_style() -> None:
    hostile = '<script>alert("x")</script>&'
    charts = [
        bar_chart([Bar(hostile, 0.5, hostile), Bar("b", None, "")], title=hostile, top=1.0,
                  tick_text=lambda v: f"{v:.0%}"),
        column_chart(["a", hostile], [Series(hostile, [1.0, 2.0], [hostile, "n"])],
                     title="t", tick_text=str),
        line_chart(["a", "b", "c"], [Series("s", [1.0, None, -1.0], ["x", "", hostile])],
                   title="t", tick_text=str, low=-1.0, high=1.0),
    ]
    for svg in charts:
        assert "<script" not in svg and "&lt;script&gt;" in svg
        assert "style=" not in svg and svg.startswith("<svg") and "<title>" in svg
    empty = line_chart(["a"], [Series("s", [None], [""])], title="t", tick_text=str,
                       empty="Nothing <here>")
    assert "Nothing &lt;here&gt;" in empty and "polyline" not in empty


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_as_text() -> None:
    assert [safe_cell(v) for v in ("=1+2", "+1", "-1", "@A1", "\t=1", "\r=1", "a=b")] == [
        "'=1+2", "'+1", "'-1", "'@A1", "'\t=1", "'\r=1", "a=b"]
    assert safe_cell(-0.5) == -0.5 and safe_cell(None) == "" and safe_cell(3) == 3
    text = to_csv(["a", "b"], [['x,"y"', "line\nbreak"], [date(2026, 11, 23), -2]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["a", "b"], ['x,"y"', "line\nbreak"], ["2026-11-23", "-2"]]
