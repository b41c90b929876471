"""Periodic background work on APScheduler, tracked so that shutdown lets a job that is
half-way through a transaction finish instead of cancelling it. While the database is
unreachable a job says so once, not with a traceback per run, and simply runs again at
its next time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from listener.outage import OutageLog

log = logging.getLogger("listener.jobs")


class Jobs:
    def __init__(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._outages: dict[str, OutageLog] = {}

    def every(self, seconds: float, func: Callable[..., Awaitable[Any]], *args: Any,
              job_id: str, first_run: datetime, jitter: float | None = None) -> None:
        self._outages[job_id] = OutageLog(log, f"job {job_id}", seconds,
                                          f"runs again every {seconds:g}s")
        self.scheduler.add_job(self._run, "interval", seconds=seconds, jitter=jitter,
                               args=[job_id, func, *args], id=job_id, max_instances=1,
                               coalesce=True, next_run_time=first_run)

    def at(self, when: datetime, func: Callable[..., Awaitable[Any]], *args: Any,
           job_id: str) -> None:
        """Run once at `when`, replacing any pending run under the same id."""
        if self._stopping:
            return
        self.scheduler.add_job(self._run, "date", run_date=when, args=[job_id, func, *args],
                               id=job_id, replace_existing=True, misfire_grace_time=None)

    async def _run(self, job_id: str, func: Callable[..., Awaitable[Any]], *args: Any
                   ) -> None:
        """Other errors go on to APScheduler, which logs them with their traceback."""
        if self._stopping:
            return
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        # One-off jobs (a poll, a wake-up) re-arm under the same id: one outage log each.
        # Their owner says when it works again; a run that skipped the database cannot.
        outage = self._outages.setdefault(job_id, OutageLog(
            log, f"job {job_id}", 0, "runs again when next scheduled", announce_recovery=False))
        try:
            await func(*args)
            outage.succeeded()
        except Exception as exc:
            if outage.failed(exc) is None:
                raise
        finally:
            self._running.discard(task)

    def start(self) -> None:
        self.scheduler.start()

    async def drain(self, timeout: float = 30) -> None:
        """Paused first and shut down last: APScheduler's shutdown cancels the jobs still
        running."""
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.pause()
        if self._running:
            await asyncio.wait(list(self._running), timeout=timeout)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
