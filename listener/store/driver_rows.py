"""SQLite: big INSERTs sent to the driver with values already in its form.

SQLAlchemy runs a Python bind processor per value (UTC conversion, the DATETIME string,
the JSON text, bool to int) and builds a parameter dict per row: about a quarter of the
cost of writing an ingest batch. Here each column is converted once over the whole batch,
with the same results byte for byte (`tests/pipeline/test_driver_rows.py` compares the two), and the
rows go out as multi-row `INSERT … VALUES (…), (…)` pages, the statement shape
SQLAlchemy's insertmanyvalues uses: on tables with a trigger (mentions) that is four
times cheaper in SQLite than one statement per row (`executemany`), and `RETURNING`
hands back exactly the rows this statement inserted, whoever else writes meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import UTCDateTime

Convert = Callable[[Sequence[Any]], list[Any]]


_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # SQLite DATETIME's storage format


def sqlite_datetime(value: datetime) -> str:
    """What `UTCDateTime` then SQLite's DATETIME bind write: naive UTC as
    'YYYY-MM-DD HH:MM:SS.ffffff', microseconds always six digits."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        value = value.astimezone(UTC)
    return _SQLITE_DATETIME % (value.year, value.month, value.day, value.hour,
                               value.minute, value.second, value.microsecond)


def _datetimes(values: Sequence[Any], done: dict[datetime, str] | None = None) -> list[Any]:
    """A batch repeats its times (its `now`, deadlines at the same cutoff, the next
    alert at the risk moment): each distinct instant is formatted once. Equal aware
    datetimes are the same instant, so they have the same text."""
    if done is None:
        done = {}
    get = done.get

    def new(value: datetime) -> str:
        text = done[value] = sqlite_datetime(value)
        return text

    return [None if v is None else (get(v) or new(v)) for v in values]


def _booleans(values: Sequence[Any]) -> list[Any]:
    """Boolean's processor on a dialect without native booleans: 1/0, and anything but
    True, False and None refused."""
    return [1 if v is True else 0 if v is False else _not_bool(v) for v in values]


def _not_bool(value: Any) -> None:
    if value is None:
        return None
    if isinstance(value, int):
        raise ValueError(f"Value {value!r} is not None, True, or False")
    raise TypeError(f"Not a boolean value: {value!r}")


def _json_encoder() -> Callable[[Any], str]:
    """`json.dumps` with its defaults, minus the encoder object it builds per call (two
    thirds of its cost on a small dict): the same text, the same errors. Its circular
    reference check is shared: call it from one thread (the event loop's)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    markers: dict[int, Any] = {}
    encode = make(markers, json.JSONEncoder().default, json.encoder.encode_basestring_ascii,
                  None, ": ", ", ", False, False, True)

    def dumps(value: Any) -> str:
        if isinstance(value, str):
            return json.dumps(value)
        try:
            return "".join(encode(value, 0))
        except BaseException:
            markers.clear()  # what a failed call left of its circular-reference check
            raise

    return dumps


json_text = _json_encoder()


def _json(dumps: Callable[[Any], str]) -> Convert:
    """JSON's processor: Python None is the JSON text 'null', as SQLAlchemy's JSON type
    (none_as_null=False) writes it."""
    return lambda values: [dumps(v) for v in values]


def _each(process: Callable[[Any], Any]) -> Convert:
    return lambda values: [process(v) for v in values]


def _converter(column: Any, dialect: Dialect) -> Convert | None:
    """The batch form of the column's bind processing on this dialect; None: as is."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return _datetimes
    if isinstance(kind, JSON):
        if getattr(kind, "none_as_null", False):
            raise NotImplementedError(f"{column}: JSON(none_as_null=True)")
        return _json(dialect._json_serializer or json_text)  # type: ignore[attr-defined]
    if isinstance(kind, Boolean) and not dialect.supports_native_boolean:
        return _booleans
    process = kind._cached_bind_processor(dialect)
    return None if process is None else _each(process)


class Layout:
    """Which columns a batch of row dicts fills, in the Table's order, with the constant
    Python defaults of the columns the rows leave out (as SQLAlchemy's executemany
    applies them); server defaults are left to the database."""

    def __init__(self, table: Table, keys: Sequence[str], dialect: Dialect):
        given = set(keys)
        unknown = given - set(table.c.keys())
        if unknown:
            raise ValueError(f"not columns of {table.name}: {sorted(unknown)}")
        self.names: list[str] = []
        self.defaults: dict[str, Any] = {}
        for column in table.columns:
            if column.name in given:
                self.names.append(column.name)
            elif column.default is not None:
                if not column.default.is_scalar:
                    raise NotImplementedError(f"{column}: a default that is not a constant")
                self.names.append(column.name)
                self.defaults[column.name] = column.default.arg
        self.converters = [_converter(table.c[name], dialect) for name in self.names]
        self.table = table

    def columns(self, rows: Sequence[dict[str, Any]]) -> list[Sequence[Any]]:
        """One sequence per column, in driver form."""
        given = [name for name in self.names if name not in self.defaults]
        if len(given) == 1:
            found: list[Sequence[Any]] = [[row[given[0]] for row in rows]]
        else:
            found = list(zip(*map(itemgetter(*given), rows), strict=True))
        by_name = dict(zip(given, found, strict=True))
        out: list[Sequence[Any]] = []
        instants: dict[datetime, str] = {}
        for name, convert in zip(self.names, self.converters, strict=True):
            values = by_name.get(name)
            if values is None:
                values = [self.defaults[name]] * len(rows)
            if convert is _datetimes:
                out.append(_datetimes(values, instants))
            else:
                out.append(values if convert is None else convert(values))
        return out


_LAYOUTS: dict[tuple[str, tuple[str, ...], str], Layout] = {}


def layout(table: Table, keys: Sequence[str], dialect: Dialect) -> Layout:
    key = (table.name, tuple(keys), dialect.name)
    found = _LAYOUTS.get(key)
    if found is None:
        found = _LAYOUTS[key] = Layout(table, keys, dialect)
    return found


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]],
                      tail: str = "", returning: Sequence[str] = ()) -> list[Any]:
    """SQLite: insert the rows (dicts with the same keys) in the session's transaction as
    a few multi-row INSERTs ending in `tail` (an ON CONFLICT clause); the `returning`
    columns of the rows inserted (rows of driver values: ids and strings as stored)."""
    if not rows:
        return []
    connection = await session.connection()
    dialect = connection.dialect
    shape = layout(table, list(rows[0]), dialect)
    columns = shape.columns(rows)
    width = len(shape.names)
    page = max(1, min(dialect.insertmanyvalues_page_size,
                      dialect.insertmanyvalues_max_parameters // width))
    quote = dialect.identifier_preparer.quote
    head = (f"INSERT INTO {quote(table.name)} "
            f"({', '.join(quote(name) for name in shape.names)}) VALUES ")
    group = "(" + ", ".join("?" * width) + ")"
    end = (f" {tail}" if tail else "") + (
        f" RETURNING {', '.join(returning)}" if returning else "")
    found: list[Any] = []
    for start in range(0, len(rows), page):
        count = min(page, len(rows) - start)
        values: list[Any] = [None] * (count * width)  # row after row, as VALUES lists them
        for offset, column in enumerate(columns):
            values[offset::width] = column[start:start + count]
        result = await connection.exec_driver_sql(
            head + ", ".join([group] * count) + end, tuple(values))
        if returning:
            found.extend(result.all())
    return found
