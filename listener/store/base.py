"""Opening transactions. On SQLite writes are serialized in-process: SQLite allows one
writer at a time, and queueing in asyncio beats retrying on "database is locked"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from listener import db


class Store:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def open(cls, url: str) -> Store:
        return cls(db.create_engine(url))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One committed transaction; any exception rolls all of it back."""
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.engine.dispose()
