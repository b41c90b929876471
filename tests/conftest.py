"""Shared fixtures: real databases (a SQLite file and the local PostgreSQL), real configs,
real services. PostgreSQL being down is a failure, not a skip."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from listener import db
from listener.app import build_services
from listener.clock import FixedClock
from listener.config import Config, parse_config
from listener.pipeline.enrich import Enricher
from listener.store import Store

PG_SERVER = os.environ.get("LISTENER_TEST_PG", "postgres@127.0.0.1:5432")
IST = ZoneInfo("Europe/Istanbul")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=IST)

BASE_CONFIG: dict[str, Any] = {
    "timezone": "Europe/Istanbul",
    "server": {"api_tokens": ["test-token"]},
    "calendar": {
        "hours": {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}
        | {"sat": "10:00-14:00"},
        "holidays": {"country": "TR"},
        "closed": ["2026-12-31"],
    },
    "sources": [{"id": "site-form", "kind": "webhook", "secret": "s3cret-hook"}],
    "brand_accounts": {"twitter": ["acme"]},
    "agents": [
        {
            "id": "ayse",
            "name": "Ayşe",
            "channels": ["twitter", "mastodon"],
            "languages": ["tr", "en"],
            "max_open": 25,
            "shift": "mon-fri 09:00-18:00",
        },
        {
            "id": "john",
            "name": "John",
            "channels": ["web", "email", "twitter"],
            "languages": ["en"],
            "max_open": 25,
            "shift": "mon-fri 09:00-18:00",
        },
    ],
    "sla": {
        "policies": [
            {
                "name": "social-same-day",
                "match": {"channels": ["twitter", "mastodon", "reddit"]},
                "first_response": "same_day",
                "cutoff": "16:00",
                "at_risk": "1h",
            },
            {
                "name": "same-day",
                "match": {},
                "first_response": "same_day",
                "cutoff": "17:00",
                "at_risk": "1h",
            },
        ]
    },
}


async def _pg(database: str, *statements: str) -> None:
    user, _, hostport = PG_SERVER.partition("@")
    host, _, port = hostport.partition(":")
    connection = await asyncpg.connect(
        user=user, host=host, port=int(port or 5432), database=database, timeout=10
    )
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test run, dropped at the end."""
    name = f"listener_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_pg("test", f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL at {PG_SERVER} is needed for the test suite and is not "
            f"reachable ({exc}); start it (see README) or set LISTENER_TEST_PG"
        )
    yield name
    asyncio.run(_pg("test", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _reset_pg(name: str) -> str:
    asyncio.run(_pg(name, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"))
    return f"postgresql+asyncpg://{PG_SERVER}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Every test that takes this runs on both backends, each time on an empty database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/listener.db"
    return _reset_pg(request.getfixturevalue("pg_database"))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A migrated store of its own, for tests below the app (outbox, sinks)."""
    store = Store.open(db_url)
    await db.migrate(store.engine)
    yield store
    await store.close()


@pytest.fixture(scope="session")
def enricher() -> Enricher:
    return Enricher()


def make_config(db_url: str, **overrides: Any) -> Config:
    data = {**BASE_CONFIG, "database": {"url": db_url}, **overrides}
    return parse_config(data)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_10)


@pytest.fixture
def config(db_url: str) -> Config:
    return make_config(db_url)


@pytest.fixture
def services(config: Config, clock: FixedClock, enricher: Enricher) -> Any:
    return build_services(config, clock=clock, enricher=enricher)
