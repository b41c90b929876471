"""`listener calls import`: calls from a call-centre export (CSV) into customers' timelines.

Columns (header names in any case; others are ignored): `phone` and `started_at`
(required), `call_id`, `name`, `duration`, `agent`, `topic`, `summary`, `outcome`. The
call id, else the phone and time, identify a call, so running a file twice changes
nothing. Bad lines are reported with their line number and skipped; each call is its own
transaction. A callback promised longer ago than `backfill` is kept as history only.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tqdm import tqdm

from listener.app import prepare_database
from listener.calls import FIELDS, CallError, is_stale, record_call, to_call
from listener.services import Services

REQUIRED = ("phone", "started_at")
DELIMITERS = (",", ";", "\t")  # spreadsheets set to Turkish write ";"


@dataclass
class CallsReport:
    lines: int = 0
    recorded: int = 0
    unchanged: int = 0
    queued: int = 0
    stale: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    readable: bool = True

    def summary(self) -> str:
        text = (f"{self.lines} calls: {self.recorded} recorded, {self.unchanged} already "
                f"recorded, {len(self.bad_lines)} rejected; {self.queued} callbacks queued")
        if self.stale:
            text += f", {self.stale} older than the backfill kept as history"
        return text


def read_calls(text: str) -> Iterator[tuple[int, int, dict[str, str] | CallError]]:
    """(line number where the record starts, characters read, row or the error)."""
    header = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=header.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        names = [name.strip().lower().replace(" ", "_") for name in next(reader)]
    except StopIteration:
        yield 1, len(text), CallError("the file is empty; the first line must be a header")
        return
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        yield 1, len(header), CallError(
            f"the CSV header needs {' and '.join(missing)} (it has: {', '.join(names)[:200]})")
        return
    lines = text.count("\n") or 1
    start = reader.line_num + 1
    for values in reader:
        number, start = start, reader.line_num + 1
        done = len(text) * reader.line_num // lines
        if not any(value.strip() for value in values):
            continue
        if len(values) > len(names):
            yield number, done, CallError("more fields than the header has")
            continue
        yield number, done, {name: value for name, value in zip(names, values, strict=False)
                             if name in FIELDS}


async def import_calls(services: Services, path: str | Path,
                       backfill: timedelta = timedelta(days=1),
                       progress: bool = True) -> CallsReport:
    report = CallsReport()
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:  # missing, a directory, no permission: said before touching the DB
        print(f"cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        report.readable = False
        return report
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report.lines, report.bad_lines = 1, [(1, f"the file is not UTF-8 ({exc.reason})")]
        print(f"line 1: skipped: {report.bad_lines[0][1]}", file=sys.stderr)
        return report
    await prepare_database(services, migrate=True)
    region = services.config.customers.default_region
    zone = ZoneInfo(services.config.timezone)
    bar = tqdm(total=len(text), unit="char", unit_scale=True, desc="calls", file=sys.stderr,
               disable=not progress)
    read = 0
    try:
        for number, done, row in read_calls(text):
            bar.update(max(done - read, 0))
            read = max(read, done)
            report.lines += 1
            try:
                if isinstance(row, CallError):
                    raise row
                if not (row.get("phone") or "").strip():
                    raise CallError("phone is required")
                call = to_call(row, region, zone)
                stale = call.callback and is_stale(call, services.clock.now(), backfill)
                recorded = await record_call(services, call, queue_callback=not stale)
            except CallError as exc:
                report.bad_lines.append((number, str(exc)))
                tqdm.write(f"line {number}: skipped: {exc}", file=sys.stderr)
                continue
            if not recorded.created:
                report.unchanged += 1
                continue
            report.recorded += 1
            report.queued += recorded.queued
            report.stale += stale
    finally:
        bar.close()
        await services.store.close()
    return report
