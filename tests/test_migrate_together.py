"""Replicas started together on one fresh PostgreSQL database each run the migrations at
start-up: they must wait for one another, not race to create the same tables."""

from __future__ import annotations

import asyncio

import pytest

from listener.db import create_engine, current_revision, head_revision, migrate
from tests.conftest import _reset_pg


@pytest.fixture
def empty_pg(pg_database: str) -> str:
    return _reset_pg(pg_database)


async def test_three_replicas_migrating_at_once_all_start(empty_pg: str) -> None:
    engines = [create_engine(empty_pg) for _ in range(3)]
    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(migrate(engine) for engine in engines), return_exceptions=True),
            timeout=60)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert not failures, f"a replica failed to migrate: {failures[0]!r}"
        assert await current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            await engine.dispose()

