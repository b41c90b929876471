"""The lead's reports page: SLA compliance, first-response times, volume, breaches and
sentiment over a date range, each as an SVG chart and a table, each with its CSV."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

from aiohttp import web
from markupsafe import Markup

from listener.humanize import short_duration
from listener.reports import (
    BUCKET_BOUNDS,
    Compliance,
    DateRange,
    RangeError,
    ResponseStats,
    SlaReport,
    parse_range,
    sla_report,
)
from listener.services import SERVICES
from listener.web.access import requires
from listener.web.charts import DURATION_STEPS, Bar, Series, bar_chart, column_chart, line_chart
from listener.web.csv_export import Cell, csv_response
from listener.web.i18n import Formats, translator
from listener.web.pages import page_lang, render

routes = web.RouteTableDef()
Rows = tuple[list[str], list[list[Cell]]]


def duration_text(seconds: float | None) -> str:
    return "–" if seconds is None else short_duration(timedelta(seconds=seconds))


def round_duration(seconds: float) -> str:
    """Axis ticks and bucket edges are round: 0, 15m, 2h, 1d 12h."""
    if not seconds:
        return "0"
    text = short_duration(timedelta(seconds=seconds))
    return text.removesuffix(" 00m")


def bucket_labels() -> list[str]:
    bounds = [round_duration(bound.total_seconds()) for bound in BUCKET_BOUNDS]
    return ([f"< {bounds[0]}"] + [f"{a}–{b}" for a, b in pairwise(bounds)]
            + [f"≥ {bounds[-1]}"])


async def load_report(request: web.Request) -> SlaReport:
    """Raises RangeError for a `from`/`to` the report cannot use."""
    svc = request.app[SERVICES]
    now = svc.clock.now()
    rng = parse_range(request.query.get("from"), request.query.get("to"), now, svc.config.tz)
    async with svc.store.read() as session:
        return await sla_report(session, rng, now, svc.config.spike.sentiment_below)


class ReportView:
    """The report as the page shows it: labels in the user's language, charts, tables."""

    def __init__(self, report: SlaReport, lang: str, fmt: Formats):
        self.report = report
        self._ = translator(lang)
        self.fmt = fmt
        self.day_labels = [self.day(d) for d in report.range.days]
        self.axis_days = [self.day(d, "d MMM") for d in report.range.days]

    def day(self, day: date, pattern: str = "EEE d MMM") -> str:
        """Noon, so the time zone conversion inside `fmt.time` never changes the date."""
        return self.fmt.time(datetime.combine(day, time(12), tzinfo=self.fmt.tz), pattern)

    def group(self, key: str | None, none_text: str) -> str:
        return key if key is not None else self._(none_text)

    def compliance_rows(self, groups: dict[Any, Compliance],
                        none_text: str) -> list[dict[str, Any]]:
        return [{"label": self.group(key, none_text), "c": c,
                 "ratio": self.fmt.percent(c.ratio)} for key, c in groups.items()]

    def compliance_chart(self, groups: dict[Any, Compliance], title: str,
                         none_text: str) -> Markup:
        _ = self._
        bars = [Bar(self.group(key, none_text), c.ratio,
                    _("{label}: {ratio} ({met} of {counted} in time)",
                      label=self.group(key, none_text), ratio=self.fmt.percent(c.ratio),
                      met=c.met, counted=c.counted))
                for key, c in groups.items()]
        return bar_chart(bars, title=_(title), top=1.0, tick_text=self.percent_tick,
                         empty=_("No deadlines fell in this range."))

    def percent_tick(self, ratio: float) -> str:
        return self.fmt.percent(ratio)

    def response_line(self) -> Markup:
        _ = self._
        days = self.report.responses_by_day
        series = []
        for name, pick in ((_("median (p50)"), "p50"), (_("p90"), "p90")):
            values = [getattr(stats, pick) for stats in days.values()]
            notes = [_("{day}: {name} {time} over {n} answered", day=label, name=name,
                       time=duration_text(value), n=stats.count)
                     for label, value, stats in zip(self.day_labels, values, days.values(),
                                                    strict=True)]
            series.append(Series(name, values, notes))
        return line_chart(self.axis_days, series, title=_("First-response time per day"),
                          tick_text=round_duration, low=0, steps=DURATION_STEPS,
                          empty=_("Nothing was answered in this range."))

    def distribution_chart(self) -> Markup:
        _ = self._
        labels = bucket_labels()
        series = [Series(channel, [float(n) for n in counts],
                         [_("{channel}, {bucket}: {n} answered", channel=channel, bucket=label,
                            n=n) for label, n in zip(labels, counts, strict=True)])
                  for channel, counts in self.report.distribution.items()]
        return column_chart(labels, series, title=_("First-response time distribution"),
                            tick_text=self.count_tick,
                            empty=_("Nothing was answered in this range."))

    def count_tick(self, value: float) -> str:
        return self.fmt.number(value)

    def volume_chart(self) -> Markup:
        _ = self._
        days = self.report.days
        volume = Series(_("mentions"), [float(d.volume) for d in days],
                        [_("{day}: {n} mentions", day=label, n=d.volume)
                         for label, d in zip(self.day_labels, days, strict=True)])
        breaches = Series(_("breaches"), [float(d.breaches) for d in days],
                          [_("{day}: {n} breaches", day=label, n=d.breaches)
                           for label, d in zip(self.day_labels, days, strict=True)])
        return column_chart(self.axis_days, [volume, breaches],
                            title=_("Volume and breaches per day"), tick_text=self.count_tick,
                            empty=_("No mentions in this range."))

    def sentiment_chart(self) -> Markup:
        _ = self._
        days = self.report.days
        mean = Series(_("mean sentiment"), [d.mean_sentiment for d in days],
                      [_("{day}: mean sentiment {value}, {negative} negative of {n}",
                         day=label, value=self.fmt.number(d.mean_sentiment, 2),
                         negative=d.negative, n=d.volume)
                       for label, d in zip(self.day_labels, days, strict=True)])
        return line_chart(self.axis_days, [mean], title=_("Sentiment per day"),
                          tick_text=lambda v: self.fmt.number(v, 1), low=-1.0, high=1.0,
                          empty=_("No mentions in this range."))

    def response_rows(self) -> list[dict[str, Any]]:
        rows = [{"label": self._("all channels"), "s": self.report.responses}]
        rows += [{"label": channel, "s": stats}
                 for channel, stats in self.report.responses_by_channel.items()]
        return [{**row, "p50": duration_text(row["s"].p50), "p90": duration_text(row["s"].p90)}
                for row in rows]

    def response_matrix(self) -> dict[str, Any]:
        """Days down, channels across: "p50 / p90 (n)" in each cell."""
        channels = list(self.report.responses_by_channel)
        cells = self.report.responses_by_channel_day
        rows = []
        for day, label in zip(self.report.range.days, self.day_labels, strict=True):
            overall = self.report.responses_by_day[day]
            rows.append({"day": label, "all": self.cell(overall),
                         "cells": [self.cell(cells.get((channel, day))) for channel in channels]})
        return {"channels": channels, "rows": rows}

    @staticmethod
    def cell(stats: ResponseStats | None) -> str:
        if stats is None or not stats.count:
            return "–"
        return f"{duration_text(stats.p50)} / {duration_text(stats.p90)} ({stats.count})"

    def context(self) -> dict[str, Any]:
        r = self.report
        return {
            "overall": r.overall, "overall_ratio": self.fmt.percent(r.overall.ratio),
            "by_channel": self.compliance_rows(r.by_channel, "none"),
            "by_agent": self.compliance_rows(r.by_agent, "unassigned"),
            "by_policy": self.compliance_rows(r.by_policy, "no policy"),
            "chart_channel": self.compliance_chart(r.by_channel, "SLA compliance by channel",
                                                   "none"),
            "chart_agent": self.compliance_chart(r.by_agent, "SLA compliance by agent",
                                                 "unassigned"),
            "chart_policy": self.compliance_chart(r.by_policy, "SLA compliance by policy",
                                                  "no policy"),
            "responses": self.response_rows(),
            "matrix": self.response_matrix(),
            "chart_responses": self.response_line(),
            "buckets": bucket_labels(),
            "distribution": r.distribution,
            "chart_distribution": self.distribution_chart(),
            "days": [{"label": label, "d": d, "sentiment": self.fmt.number(d.mean_sentiment, 2)}
                     for label, d in zip(self.day_labels, r.days, strict=True)],
            "chart_volume": self.volume_chart(),
            "chart_sentiment": self.sentiment_chart(),
        }


def range_query(rng: DateRange) -> str:
    return f"from={rng.first.isoformat()}&to={rng.last.isoformat()}"


def presets(today: date) -> list[dict[str, str]]:
    spans = (("Last 7 days", 6), ("Last 30 days", 29), ("Last 90 days", 89))
    return [{"label": label,
             "query": f"from={(today - timedelta(days=back)).isoformat()}&to={today.isoformat()}"}
            for label, back in spans]


@routes.get("/reports")
@requires("lead")
async def reports_page(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    today = svc.clock.now().astimezone(svc.config.tz).date()
    form = {"from": request.query.get("from", ""), "to": request.query.get("to", "")}
    try:
        report = await load_report(request)
    except RangeError as exc:
        return render(request, "reports.html", status=400, error=exc, form=form,
                      presets=presets(today))
    lang = page_lang(request)
    view = ReportView(report, lang, Formats(lang, svc.config.tz))
    form = {"from": report.range.first.isoformat(), "to": report.range.last.isoformat()}
    return render(request, "reports.html", report=report, form=form, presets=presets(today),
                  query=range_query(report.range), negative_below=report.negative_below,
                  **view.context())


# -- CSV exports: machine-readable, so English headers, ISO dates, seconds, plain numbers --

def _compliance_csv(first: str, groups: dict[Any, Compliance]) -> Rows:
    header = [first, "met", "missed", "breached_unanswered", "not_due_yet", "compliance_pct"]
    rows: list[list[Cell]] = [
        [key, c.met, c.missed, c.breached, c.pending,
         None if c.ratio is None else round(c.ratio * 100, 1)]
        for key, c in groups.items()]
    return header, rows


def _stats_row(channel: str | None, day: date | None, stats: ResponseStats) -> list[Cell]:
    return [channel, day, stats.count, stats.p50, stats.p90]


def first_response_csv(report: SlaReport) -> Rows:
    """A blank channel is every channel; a blank day is the whole range."""
    rows = [_stats_row(None, None, report.responses)]
    rows += [_stats_row(ch, None, s) for ch, s in report.responses_by_channel.items()]
    rows += [_stats_row(None, day, s) for day, s in report.responses_by_day.items()]
    rows += [_stats_row(ch, day, s) for (ch, day), s in report.responses_by_channel_day.items()]
    return ["channel", "day", "answered", "p50_seconds", "p90_seconds"], rows


def distribution_csv(report: SlaReport) -> Rows:
    lows: Sequence[float] = [0.0] + [b.total_seconds() for b in BUCKET_BOUNDS]
    highs: Sequence[float | None] = [b.total_seconds() for b in BUCKET_BOUNDS] + [None]
    rows: list[list[Cell]] = [
        [channel, label, low, high, n]
        for channel, counts in report.distribution.items()
        for label, low, high, n in zip(bucket_labels(), lows, highs, counts, strict=True)]
    return ["channel", "bucket", "from_seconds", "to_seconds", "answered"], rows


def daily_csv(report: SlaReport) -> Rows:
    rows: list[list[Cell]] = [
        [d.day, d.volume, d.breaches, d.negative,
         None if d.mean_sentiment is None else round(d.mean_sentiment, 4)]
        for d in report.days]
    return ["day", "mentions", "breaches", "negative", "mean_sentiment"], rows


CSV_EXPORTS: dict[str, Callable[[SlaReport], Rows]] = {
    "sla-by-agent": lambda r: _compliance_csv("agent", r.by_agent),
    "sla-by-channel": lambda r: _compliance_csv("channel", r.by_channel),
    "sla-by-policy": lambda r: _compliance_csv("policy", r.by_policy),
    "first-response": first_response_csv,
    "first-response-distribution": distribution_csv,
    "daily": daily_csv,
}


@routes.get("/reports/{name}.csv")
@requires("lead")
async def report_csv(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    export = CSV_EXPORTS.get(name)
    if export is None:
        raise web.HTTPNotFound(text=f"no report named {name}; one of {', '.join(CSV_EXPORTS)}")
    try:
        report = await load_report(request)
    except RangeError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    header, rows = export(report)
    rng = report.range
    return csv_response(f"{name}_{rng.first.isoformat()}_{rng.last.isoformat()}.csv",
                        header, rows)
