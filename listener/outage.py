"""What counts as "the database is unreachable", and how a background loop lives through
it: one warning when the outage starts, one line when it ends, a bounded back-off in
between, and no traceback per tick (a 30 s outage used to write thousands of lines).

The web layer answers such errors with 503 + Retry-After (`listener/web/errors.py`);
every other error is still a bug and still logged with its traceback by its caller.
"""

from __future__ import annotations

import logging
import time

import asyncpg
from sqlalchemy import exc as sa_exc

UNREACHABLE = (
    ConnectionError,  # asyncpg raises the refused connect as it is
    sa_exc.OperationalError,  # SQLite locked or unopenable; PostgreSQL gone mid-query
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no pooled connection came free in time
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionDoesNotExistError,  # the server went away mid-query
)
FIRST_RETRY_SECONDS = 1.0


def _causes(exc: BaseException) -> list[BaseException]:
    """The error and what it wraps: SQLAlchemy's, the adapted DB-API one, the driver's."""
    chain = [exc]
    while len(chain) < 6:
        cause = getattr(chain[-1], "orig", None) or chain[-1].__cause__
        if cause is None or cause in chain:
            break
        chain.append(cause)
    return chain


def database_unreachable(exc: BaseException) -> bool:
    """True for failures to reach the database, not for errors in what we asked of it."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return any(isinstance(link, UNREACHABLE) for link in _causes(exc))


def reason(exc: BaseException) -> str:
    """The driver's own words, first line only: never the SQL or its parameters (an
    outbox insert carries customers' text)."""
    inner = _causes(exc)[-1]
    first = (str(inner).splitlines() or [""])[0].strip()
    return f"{type(inner).__name__}: {first}" if first else type(inner).__name__


class OutageLog:
    """One background loop's view of the database. `failed` says whether an error is the
    database being unreachable, logs that once per outage and gives the wait before the
    next try (1 s, doubling up to `longest`); `succeeded` logs the recovery once.
    `retrying` tells how the loop tries again when it is not by that back-off."""

    def __init__(self, log: logging.Logger, loop: str, longest: float,
                 retrying: str | None = None, announce_recovery: bool = True):
        self.log = log
        self.loop = loop
        self.longest = longest
        self.retrying = retrying or f"retrying every {longest:g}s at most"
        self.announce_recovery = announce_recovery
        self.failures = 0
        self._since = 0.0

    def failed(self, exc: BaseException) -> float | None:
        """Seconds to wait before retrying, or None when `exc` is not an outage (the
        caller logs it as the bug it is)."""
        if not database_unreachable(exc):
            return None
        if not self.failures:
            self._since = time.monotonic()
            self.log.warning("database unreachable: %s; %s: %s", reason(exc), self.loop,
                             self.retrying)
        self.failures += 1
        return min(self.longest, FIRST_RETRY_SECONDS * 2 ** min(self.failures - 1, 16))

    def succeeded(self) -> None:
        if self.failures and self.announce_recovery:
            self.log.info("database reachable again: %s recovered after %.0fs (%d tries)",
                          self.loop, time.monotonic() - self._since, self.failures)
        self.failures = 0
