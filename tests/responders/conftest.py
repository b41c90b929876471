"""Fixtures for the alert sinks and the outbox worker: a migrated database on both
backends, and fake services started on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.responders.hooks import FakeHook


@pytest.fixture
async def start_hook(aiohttp_server: Any) -> AsyncIterator[
        Callable[..., Awaitable[tuple[FakeHook, str]]]]:
    """`hook, base_url = await start_hook(*answers)`."""
    started: list[FakeHook] = []

    async def start(*answers: Any) -> tuple[FakeHook, str]:
        hook = FakeHook(*answers)
        server = await aiohttp_server(hook.app())
        started.append(hook)
        return hook, str(server.make_url("")).rstrip("/")

    yield start
    for hook in started:
        hook.release.set()
