"""`column IN (a batch's values)`: one bound value on SQLite, however many values."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.sql.elements import ColumnElement


def one_of(column: Any, values: Collection[Any], dialect: str) -> ColumnElement[bool]:
    """SQLite: `column IN (SELECT value FROM json_each(?))`, the values one JSON array.
    With one bound parameter a value, SQLAlchemy expanded and bound thousands of them on
    every execution, which cost the writing process more than SQLite's look-up itself,
    and a batch had to go in slices under SQLite's parameter limit. SQLite still seeks
    the column's index once a value. PostgreSQL: the values written into the statement;
    one bound parameter a value is slow to send, and a prepared statement's generic plan
    (made while the table was small) would keep scanning the whole table."""
    if dialect == "postgresql":
        return column.in_(bindparam(None, list(values), expanding=True,
                                    literal_execute=True))
    array = json.dumps(list(values), ensure_ascii=False)
    return column.in_(select(func.json_each(array).table_valued("value").c.value))
