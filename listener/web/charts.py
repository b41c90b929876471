"""Server-rendered SVG charts for the reports: no chart library, no CDN, no script.

Every label and tooltip goes through `escape` (channel names come from webhook payloads).
Colours and sizes of text live in static/reports.css, addressed by class (`s0`..`s5` for
series); the CSP forbids style attributes. Each bar and point carries an SVG `<title>`,
which browsers show as a tooltip and screen readers read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
SERIES_CLASSES = 6
MAX_X_LABELS = 10
DURATION_STEPS = (60, 300, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400, 172800, 604800)

Format = Callable[[float], str]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: nothing to show (e.g. no mention counted)
    note: str  # the tooltip


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    notes: Sequence[str]  # one tooltip per value


def nice_ticks(top: float, steps: Sequence[float] | None = None, count: int = 4) -> list[float]:
    """Round axis ticks from 0 to at least `top`: 1-2-5 steps, or the nearest of `steps`."""
    top = max(top, 1e-9)
    raw = top / count
    if steps:
        step = next((s for s in steps if s >= raw), steps[-1] * math.ceil(raw / steps[-1]))
    else:
        power = 10 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * n for n in range(math.ceil(top / step - 1e-9) + 1)]


def _svg(height: int, title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}"'
        f' role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        + "".join(body) + "</svg>"
    )


def _empty(title: str, empty: str) -> Markup:
    return _svg(40, title, [f'<text class="empty" x="{WIDTH / 2}" y="24">{escape(empty)}</text>'])


def bar_chart(bars: Sequence[Bar], *, title: str, top: float, tick_text: Format,
              empty: str = "No data") -> Markup:
    """Horizontal bars, one per label, on a 0..`top` scale (e.g. 0..1 for compliance)."""
    if not any(bar.value is not None for bar in bars):
        return _empty(title, empty)
    left, right, row, axis = 170, 60, 26, 22
    plot = WIDTH - left - right
    height = row * len(bars) + axis + 8
    body = []
    for tick in nice_ticks(top):
        if tick > top + 1e-9:
            break
        x = left + plot * tick / top
        body.append(f'<line class="grid" x1="{x:.1f}" y1="0" x2="{x:.1f}" '
                    f'y2="{row * len(bars)}"/>')
        body.append(f'<text class="tick x" x="{x:.1f}" y="{row * len(bars) + 16}">'
                    f"{escape(tick_text(tick))}</text>")
    for index, bar in enumerate(bars):
        y = index * row
        body.append(f'<text class="label" x="{left - 8}" y="{y + 17}">'
                    f"{escape(_shorten(bar.label, 24))}</text>")
        if bar.value is None:
            continue
        width = max(plot * min(bar.value, top) / top, 1.0)
        body.append(f'<g class="bar s0"><title>{escape(bar.note)}</title>'
                    f'<rect x="{left}" y="{y + 4}" width="{width:.1f}" height="{row - 8}"/>'
                    f'<text class="value" x="{left + width + 4:.1f}" y="{y + 17}">'
                    f"{escape(tick_text(bar.value))}</text></g>")
    return _svg(height, title, body)


class _Frame:
    """A vertical-value plot area shared by the column and line charts."""

    left, right, top_pad, bottom = 64, 16, 12, 44
    plot_height = 200

    def __init__(self, categories: Sequence[str], low: float, high: float,
                 steps: Sequence[float] | None):
        self.categories = categories
        self.plot_width = WIDTH - self.left - self.right
        self.ticks = [t for t in nice_ticks(max(high - low, 1e-9), steps)]
        self.low = low
        self.high = low + self.ticks[-1]
        self.slot = self.plot_width / max(len(categories), 1)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return self.top_pad + self.plot_height * (1 - share)

    def x_center(self, index: int) -> float:
        return self.left + self.slot * (index + 0.5)

    @property
    def height(self) -> int:
        return self.top_pad + self.plot_height + self.bottom

    def axes(self, tick_text: Format) -> list[str]:
        body = []
        for tick in self.ticks:
            y = self.y(self.low + tick)
            body.append(f'<line class="grid" x1="{self.left}" y1="{y:.1f}" '
                        f'x2="{WIDTH - self.right}" y2="{y:.1f}"/>')
            body.append(f'<text class="tick y" x="{self.left - 6}" y="{y + 4:.1f}">'
                        f"{escape(tick_text(self.low + tick))}</text>")
        every = math.ceil(len(self.categories) / MAX_X_LABELS) or 1
        base = self.top_pad + self.plot_height
        for index, label in enumerate(self.categories):
            if index % every == 0:
                body.append(f'<text class="tick x" x="{self.x_center(index):.1f}" '
                            f'y="{base + 16}">{escape(_shorten(label, 12))}</text>')
        return body

    def legend(self, series: Sequence[Series]) -> list[str]:
        if len(series) < 2:
            return []
        body, x = [], float(self.left)
        y = self.top_pad + self.plot_height + 34
        for index, one in enumerate(series):
            body.append(f'<rect class="key {_series_class(index)}" x="{x:.1f}" y="{y - 9}" '
                        f'width="10" height="10"/><text class="legend" x="{x + 14:.1f}" '
                        f'y="{y}">{escape(_shorten(one.name, 20))}</text>')
            x += 24 + 7 * min(len(one.name), 20)
        return body


def column_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
                 tick_text: Format, steps: Sequence[float] | None = None,
                 empty: str = "No data") -> Markup:
    """Grouped vertical columns: one group per category, one column per series."""
    values = [v for one in series for v in one.values if v is not None]
    if not values or not any(values):
        return _empty(title, empty)
    frame = _Frame(categories, 0.0, max(values), steps)
    body = frame.axes(tick_text)
    width = frame.slot * 0.8 / len(series)
    for s_index, one in enumerate(series):
        for index, (value, note) in enumerate(zip(one.values, one.notes, strict=True)):
            if not value:
                continue
            x = frame.left + frame.slot * (index + 0.1) + width * s_index
            y = frame.y(value)
            body.append(f'<g class="bar {_series_class(s_index)}"><title>{escape(note)}</title>'
                        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width - 1, 1):.1f}" '
                        f'height="{frame.y(0) - y:.1f}"/></g>')
    return _svg(frame.height, title, body + frame.legend(series))


def line_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
               tick_text: Format, low: float | None = None, high: float | None = None,
               steps: Sequence[float] | None = None, empty: str = "No data") -> Markup:
    """One line per series over the categories; a missing value breaks the line."""
    values = [v for one in series for v in one.values if v is not None]
    if not values:
        return _empty(title, empty)
    bottom = min(values) if low is None else low
    frame = _Frame(categories, bottom, max(values) if high is None else high, steps)
    body = frame.axes(tick_text)
    if frame.low < 0 < frame.high:
        body.append(f'<line class="zero" x1="{frame.left}" y1="{frame.y(0):.1f}" '
                    f'x2="{WIDTH - frame.right}" y2="{frame.y(0):.1f}"/>')
    for s_index, one in enumerate(series):
        css = _series_class(s_index)
        for run in _runs(one.values):
            points = " ".join(f"{frame.x_center(i):.1f},{frame.y(v):.1f}" for i, v in run)
            body.append(f'<polyline class="line {css}" points="{points}"/>')
        for index, (value, note) in enumerate(zip(one.values, one.notes, strict=True)):
            if value is None:
                continue
            body.append(f'<g class="point {css}"><title>{escape(note)}</title>'
                        f'<circle cx="{frame.x_center(index):.1f}" cy="{frame.y(value):.1f}" '
                        f'r="3.5"/></g>')
    return _svg(frame.height, title, body + frame.legend(series))


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    runs: list[list[tuple[int, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((index, value))
    return [run for run in runs if run]


def _series_class(index: int) -> str:
    return f"s{index % SERIES_CLASSES}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
