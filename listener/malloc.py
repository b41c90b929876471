"""Hand freed heap memory back to the operating system (glibc; a no-op elsewhere).

glibc keeps what Python, SQLite and lingua's threads free in its arenas (by default up
to eight per core, one per busy thread), so `listener serve` only ever grew: after a
burst of webhooks and page views about 50 MB of its resident size was free memory it
still held. Two arenas and a `malloc_trim` every few seconds (about a millisecond each)
keep what is resident close to what is in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
ARENAS = 2
TRIM_SECONDS = 5


@functools.cache
def _glibc() -> Any | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both or neither: musl has no trim
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas() -> None:
    """Before the worker threads start: their allocations share two arenas."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, ARENAS)


async def release_free_memory() -> None:
    """A periodic job: free pages in every arena go back to the system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
