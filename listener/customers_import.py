"""`listener customers import`: customers from a CRM export (CSV or JSONL).

Columns (CSV header, or JSONL keys): `external_id` (required), `name`, `identities`
(separated by `;` or given as a JSON list: e-mails, phones in any format, handles as
`twitter:@ali`, `crm:ID`), `email`, `phone`, `segment`, `lifetime_value`, `notes`. The
same external id updates the customer, so running a file twice changes nothing. Bad lines
are reported with their line number and skipped; each line is its own transaction.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from listener.app import prepare_database
from listener.identities import BadIdentity, parse_identity
from listener.services import Services
from listener.store.actions import Conflict
from listener.store.customers import CrmRecord, import_crm_record

COLUMNS = ("external_id", "name", "identities", "email", "phone", "segment",
           "lifetime_value", "notes")


class LineError(ValueError):
    """One line cannot be imported; the message names the field."""


@dataclass
class ImportReport:
    lines: int = 0
    created: int = 0
    updated: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    readable: bool = True

    def summary(self) -> str:
        return (f"{self.lines} customers: {self.created} created, {self.updated} updated, "
                f"{len(self.bad_lines)} rejected")


def _text(row: dict[str, Any], key: str, limit: int) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise LineError(f"{key} must be text")
    value = value.strip()
    if len(value) > limit:
        raise LineError(f"{key} is longer than {limit} characters")
    return value or None


def to_record(row: dict[str, Any], region: str) -> CrmRecord:
    """One CSV row or JSONL object → a record with normalised identities."""
    external_id = _text(row, "external_id", 200)
    if not external_id:
        raise LineError("external_id is required")
    raw = row.get("identities") or []
    if isinstance(raw, str):
        raw = [part for part in raw.replace(",", ";").split(";")]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise LineError("identities must be text separated by ; or a list of strings")
    raw += [f"{key}:{row[key]}" for key in ("email", "phone") if _text(row, key, 320)]
    identities = []
    for text in (t.strip() for t in raw):
        if not text:
            continue
        try:
            identities.append(parse_identity(text, region))
        except BadIdentity as exc:
            raise LineError(f"identities: {exc}") from None
    value = row.get("lifetime_value")
    lifetime = None
    if value not in (None, ""):
        try:
            lifetime = float(str(value).replace(",", "")) if not isinstance(
                value, bool) else None
        except ValueError:
            lifetime = None
        if lifetime is None:
            raise LineError(f"lifetime_value must be a number, got {str(value)[:40]!r}")
    return CrmRecord(external_id=external_id, name=_text(row, "name", 200) or "",
                     identities=tuple(dict.fromkeys(identities)),
                     segment=_text(row, "segment", 50), lifetime_value=lifetime,
                     notes=_text(row, "notes", 10_000))


def read_rows(path: Path) -> Iterator[tuple[int, int, dict[str, Any] | LineError]]:
    """(line number, bytes read so far, row or the error) for a .csv or .jsonl file."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield 1, len(data), LineError(f"the file is not UTF-8 ({exc.reason})")
        return
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        done = 0
        for number, line in enumerate(text.splitlines(keepends=True), start=1):
            done += len(line.encode())
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, done, LineError(f"not JSON: {exc.msg}")
                continue
            yield number, done, obj if isinstance(obj, dict) else LineError(
                "each line must be a JSON object")
        return
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "external_id" not in reader.fieldnames:
        yield 1, len(data), LineError("the CSV header needs an external_id column")
        return
    lines = text.count("\n") or 1
    for row in reader:
        if None in row:
            yield reader.line_num, len(data) * reader.line_num // lines, LineError(
                "more fields than the header has")
            continue
        yield reader.line_num, len(data) * reader.line_num // lines, row


async def import_customers(services: Services, path: str | Path,
                           progress: bool = True) -> ImportReport:
    report = ImportReport()
    path = Path(path)
    try:
        path.open("rb").close()
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        report.readable = False
        return report
    await prepare_database(services, migrate=True)
    region = services.config.customers.default_region
    bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="customers",
               file=sys.stderr, disable=not progress)
    read = 0
    try:
        for number, done, row in read_rows(path):
            bar.update(max(done - read, 0))
            read = max(read, done)
            report.lines += 1
            try:
                if isinstance(row, LineError):
                    raise row
                record = to_record(row, region)
                async with services.store.write() as session:
                    outcome = await import_crm_record(session, record, services.clock.now())
            except (LineError, Conflict) as exc:
                report.bad_lines.append((number, str(exc)))
                tqdm.write(f"line {number}: skipped: {exc}", file=sys.stderr)
                continue
            if outcome == "created":
                report.created += 1
            else:
                report.updated += 1
    finally:
        bar.close()
        await services.store.close()
    return report
