"""Periodic background work on APScheduler, tracked so that shutdown lets a job that is
half-way through a transaction finish instead of cancelling it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler


class Jobs:
    def __init__(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def every(self, seconds: float, func: Callable[..., Awaitable[Any]], *args: Any,
              job_id: str, first_run: datetime, jitter: float | None = None) -> None:
        self.scheduler.add_job(self._run, "interval", seconds=seconds, jitter=jitter,
                               args=[func, *args], id=job_id, max_instances=1, coalesce=True,
                               next_run_time=first_run)

    def at(self, when: datetime, func: Callable[..., Awaitable[Any]], *args: Any,
           job_id: str) -> None:
        """Run once at `when`, replacing any pending run under the same id."""
        if self._stopping:
            return
        self.scheduler.add_job(self._run, "date", run_date=when, args=[func, *args], id=job_id,
                               replace_existing=True, misfire_grace_time=None)

    async def _run(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._stopping:
            return
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await func(*args)
        finally:
            self._running.discard(task)

    def start(self) -> None:
        self.scheduler.start()

    async def drain(self, timeout: float = 30) -> None:
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._running:
            await asyncio.wait(list(self._running), timeout=timeout)
