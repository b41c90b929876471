"""Engine creation and migrations. The same code serves SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger("listener.db")
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    """SQLite gets WAL (readers never block the writer) and a busy timeout, so a
    `listener ingest` next to a running `listener serve` waits instead of failing."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


BULK_CACHE_KIB = 65_536
"""SQLite page cache of a `listener ingest` connection (SQLite's default: 2,000 KiB)."""


async def use_bulk_cache(engine: AsyncEngine) -> None:
    """A bulk import's batch inserts into indexes keyed by customer and by author, all
    over their pages: in SQLite's default 2 MB cache they spilled to the WAL and were read
    back within the batch (about 3.5 µs of a mention's 25 µs of SQLite work). A one-off
    import can afford 64 MB a connection; `serve` keeps the default (its memory target).
    Connections opened before this are closed, so every one from now on has it."""
    if engine.dialect.name != "sqlite":
        return
    event.listen(engine.sync_engine, "connect", _bulk_cache)
    await engine.dispose()


def _bulk_cache(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    cursor.close()


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


# Any fixed number: replicas starting together on one PostgreSQL wait for each other's
# upgrade instead of racing to create the same tables.
MIGRATION_LOCK = 7_415_339_201


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        before = await connection.run_sync(_current)
        await connection.run_sync(_upgrade)
        after = await connection.run_sync(_current)
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "empty", after)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def at_head(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()
