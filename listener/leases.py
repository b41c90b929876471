"""Who may do what when several processes share one database.

On PostgreSQL any number of `listener serve` replicas run side by side; each polled
source is polled by one of them at a time, the holder of its lease (a row in
`source_leases`). The holder renews its leases a few times per poll interval; a lease
left to expire (its replica died or hung) is claimed by another replica, which then
polls the source from the cursor stored in the database. Claim and renewal are one
statement (`INSERT … ON CONFLICT DO UPDATE … WHERE expired OR mine`), so two replicas
can never both hold a source. Times come from each replica's clock; keep them in sync
(NTP), a skew eats into the lease's margin.

Replicas share the work: each writes a heartbeat row (`live_replicas`) with every lease
round, claims free sources only up to its fair share (`fair_share`: the sources divided
by the live replicas, rounded up) and lets its extra ones go at once (deleting the lease,
so another replica claims it at its next round) when a newcomer makes the share smaller.
A dead replica's heartbeat runs out with its leases, so the survivors' share grows just
as its sources come free.

SQLite is one process: `serve` holds an exclusive lock on `<database>.serve.lock`
for its lifetime, and a second `serve` on the same file stops at once, naming it.
"""

from __future__ import annotations

import fcntl
import math
import os
import secrets
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import LiveReplica, SourceLease


def holder_id() -> str:
    """Unique per process and start: a restarted replica with a reused pid is new."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_ttl(interval: timedelta) -> timedelta:
    """Long enough to survive a few missed renewals, short enough that a survivor (which
    looks every quarter interval, `renew_every`) polls within two intervals of a death."""
    return min(max(interval * 1.25, timedelta(seconds=2)), timedelta(hours=2))


def renew_every(intervals: Iterable[timedelta]) -> float:
    """Seconds between lease rounds: a quarter of the shortest poll interval, 0.5-15 s."""
    shortest = min(intervals, default=timedelta(minutes=1)).total_seconds()
    return min(max(shortest / 4, 0.5), 15.0)


def fair_share(sources: int, live_replicas: int) -> int:
    """How many sources one replica may hold: all of them split evenly, rounded up."""
    return math.ceil(sources / max(live_replicas, 1))


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


async def heartbeat(session: AsyncSession, holder: str, now: datetime,
                    ttl: timedelta) -> int:
    """Say this replica is alive until `now + ttl`; returns how many replicas are alive
    (this one included). Its own transaction: it locks this replica's row only."""
    statement = _insert(session)(LiveReplica).values(holder=holder, alive_until=now + ttl)
    statement = statement.on_conflict_do_update(
        index_elements=[LiveReplica.holder],
        set_={"alive_until": statement.excluded.alive_until})
    await session.execute(statement)
    alive = select(func.count()).select_from(LiveReplica).where(LiveReplica.alive_until > now)
    return (await session.execute(alive)).scalar_one()


async def forget_dead(session: AsyncSession, now: datetime) -> None:
    """Drop heartbeats that ran out (replicas that died without a clean stop)."""
    await session.execute(delete(LiveReplica).where(LiveReplica.alive_until <= now))


async def let_go(session: AsyncSession, source_id: str, holder: str) -> None:
    """Hand one of our sources over now: another replica may claim it at its next round."""
    await session.execute(delete(SourceLease).where(SourceLease.source_id == source_id,
                                                    SourceLease.holder == holder))


async def claim(session: AsyncSession, source_id: str, holder: str, now: datetime,
                ttl: timedelta) -> bool:
    """Take a free or expired lease, or renew our own; False when another replica holds it."""
    statement = _insert(session)(SourceLease).values(source_id=source_id, holder=holder,
                                           expires_at=now + ttl)
    statement = statement.on_conflict_do_update(
        index_elements=[SourceLease.source_id],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=or_(SourceLease.expires_at < now, SourceLease.holder == holder),
    ).returning(SourceLease.source_id)
    return (await session.execute(statement)).first() is not None


async def release(session: AsyncSession, holder: str) -> None:
    """On a clean stop: hand our sources over now rather than after the lease runs out,
    and leave the live replicas so the others' share grows at once."""
    await session.execute(delete(SourceLease).where(SourceLease.holder == holder))
    await session.execute(delete(LiveReplica).where(LiveReplica.holder == holder))


async def holders(session: AsyncSession) -> dict[str, str]:
    """Source id → holder of each lease (expired ones included), for status and tests."""
    rows = await session.execute(select(SourceLease.source_id, SourceLease.holder))
    return {source_id: holder for source_id, holder in rows.all()}


class DatabaseInUse(OSError):
    """Another `listener serve` works on this SQLite file (an OSError, so `serve`
    reports it as the database error it is)."""


def lock_sqlite_file(database: str) -> IO[bytes]:
    """Hold `<database>.serve.lock` exclusively until the returned file is closed (or
    the process dies: the kernel drops the lock, even after SIGKILL)."""
    path = Path(f"{database}.serve.lock")
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DatabaseInUse(
            f"another `listener serve` is already using the SQLite database {database} "
            f"(it holds {path}); SQLite allows one serve process per file, use "
            "PostgreSQL to run several replicas") from None
    return handle
