"""CSV downloads that are safe to open in a spreadsheet.

Channel names come from webhook payloads and agent or policy names from config, so a text
cell may start with `=`, `+`, `-` or `@` (or a tab or carriage return, which some
spreadsheets skip before reading a formula). Such a cell gets a leading `'`, which makes
the spreadsheet show it as text instead of running it. Numbers are written as numbers: a
negative figure is data, not a formula.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from aiohttp import web

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")

Cell = str | int | float | date | datetime | None


def safe_cell(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = value.isoformat() if isinstance(value, date | datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """Comma separated, every field quoted where needed (RFC 4180), CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([safe_cell(name) for name in header])
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    return out.getvalue()


def csv_response(filename: str, header: Sequence[str],
                 rows: Iterable[Sequence[Cell]]) -> web.Response:
    """A download (`Content-Disposition: attachment`) in UTF-8 with a BOM, so spreadsheet
    programs read Turkish letters right."""
    name = SAFE_FILENAME.sub("_", filename) or "report.csv"
    return web.Response(
        body=("\ufeff" + to_csv(header, rows)).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "X-Content-Type-Options": "nosniff"},
    )
