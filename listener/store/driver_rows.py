"""SQLite: big INSERTs sent to the driver with values already in its form.

SQLAlchemy runs a Python bind processor per value (UTC conversion, the DATETIME string,
the JSON text, bool to int) and builds a parameter dict per row: about a quarter of the
cost of writing an ingest batch. Here each column is converted once over the whole batch,
with the same results byte for byte (`tests/pipeline/test_driver_rows.py` compares the two), and the
rows go out as multi-row `INSERT … VALUES (…), (…)` pages, the statement shape
SQLAlchemy's insertmanyvalues uses: on tables with a trigger (mentions) that is four
times cheaper in SQLite than one statement per row (`executemany`). The new rows' ids
come from SQLite's consecutive rowids under its one writer (`_inserted`), not from
`RETURNING` rows fetched one step at a time.
"""

from __future__ import annotations

import functools
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


def json_encoder() -> Callable[[Any], str]:
    """`json.dumps` with its defaults, minus the encoder object it builds per call (two
    thirds of its cost on a small dict): the same text, the same errors. Each encoder
    has its own circular reference check: use one from one thread (the event loop's)."""
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
        return _json(dialect._json_serializer or json_encoder())  # type: ignore[attr-defined]
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


@functools.lru_cache(maxsize=128)
def layout(table: Table, keys: tuple[str, ...], dialect: Dialect) -> Layout:
    """A table's layout for rows with these keys, made once: working out the columns,
    defaults and converters took longer than converting a small batch."""
    return Layout(table, keys, dialect)


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]],
                      tail: str = "", returning: Sequence[str] = ()) -> list[Any]:
    """SQLite: insert the rows (dicts with the same keys) in the session's transaction as
    a few multi-row INSERTs ending in `tail` (an ON CONFLICT clause). `returning`: "id"
    then columns stored as given (text, integers); a tuple of those for each row inserted,
    in the order given, as `RETURNING` would hand them back."""
    if not rows:
        return []
    if returning and returning[0] != "id":
        raise ValueError("returning starts with the id")
    connection = await session.connection()
    dialect = connection.dialect
    shape = layout(table, tuple(rows[0]), dialect)
    columns = shape.columns(rows)
    width = len(shape.names)
    page = max(1, min(dialect.insertmanyvalues_page_size,
                      dialect.insertmanyvalues_max_parameters // width))
    quote = dialect.identifier_preparer.quote
    head = (f"INSERT INTO {quote(table.name)} "
            f"({', '.join(quote(name) for name in shape.names)}) VALUES ")
    group = "(" + ", ".join("?" * width) + ")"
    end = f" {tail}" if tail else ""
    driver = (await connection.get_raw_connection()).driver_connection
    found: list[Any] = []
    for start in range(0, len(rows), page):
        count = min(page, len(rows) - start)
        values: list[Any] = [None] * (count * width)  # row after row, as VALUES lists them
        for offset, column in enumerate(columns):
            values[offset::width] = column[start:start + count]
        # Straight to aiosqlite, in the transaction SQLAlchemy began: one trip to its
        # thread (SQLAlchemy's adapter makes three), so the insert is under way as soon
        # as this coroutine waits, and no row comes back one step at a time.
        cursor = await driver.execute(head + ", ".join([group] * count) + end, tuple(values))
        if returning:
            found.extend(await _inserted(driver, table, returning, rows[start:start + count],
                                         cursor.rowcount, cursor.lastrowid))
    return found


async def _inserted(driver: Any, table: Table, returning: Sequence[str],
                    rows: Sequence[dict[str, Any]], count: int, last: int) -> list[Any]:
    """The rows one INSERT stored: SQLite's one writer gives them consecutive rowids in
    VALUES order, ending at `last_insert_rowid()`. When all went in, that is the answer;
    when a conflict left some out, the stored ones are read back by that id range."""
    if count == 0:
        return []
    first = last - count + 1
    if count == len(rows):
        keys = returning[1:]
        if not keys:
            return [(first + offset,) for offset in range(count)]
        get = itemgetter(*keys)  # one key: the value itself; more: a tuple of them
        if len(keys) == 1:
            return [(first + offset, get(row)) for offset, row in enumerate(rows)]
        return [(first + offset, *get(row)) for offset, row in enumerate(rows)]
    return list(await driver.execute_fetchall(
        f"SELECT {', '.join(returning)} FROM {table.name} WHERE id BETWEEN ? AND ? "
        "ORDER BY id", (first, last)))
