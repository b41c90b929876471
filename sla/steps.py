"""A deadline's explanation steps, written out only when someone reads them.

Writing the steps (local times, offsets, day names, durations in words) costs several
times more than computing the deadline, and only `listener sla explain`, the mention
page and the API show them; ingest computes deadlines by the thousand and never does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload


class LazySteps(Sequence[str]):
    """The steps `explain()` returns, worked out on first use and kept.

    Reads like the tuple it stands for: equal to (and hashed like) that tuple, sliced
    into tuples, shown as one.
    """

    __slots__ = ("_explain", "_steps")

    def __init__(self, explain: Callable[[], tuple[str, ...]]):
        self._explain: Callable[[], tuple[str, ...]] | None = explain
        self._steps: tuple[str, ...] = ()

    def __call__(self) -> tuple[str, ...]:
        """The steps as a plain tuple."""
        if self._explain is not None:
            self._steps, self._explain = self._explain(), None
        return self._steps

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self()[index]

    def __len__(self) -> int:
        return len(self())

    def __iter__(self) -> Iterator[str]:
        return iter(self())

    def __contains__(self, value: object) -> bool:
        return value in self()

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, LazySteps):
            other = other()
        return self() == other if isinstance(other, tuple) else NotImplemented

    def __hash__(self) -> int:
        return hash(self())

    def __repr__(self) -> str:
        return repr(self())

    def __reduce__(self) -> tuple[type[tuple[str, ...]], tuple[tuple[str, ...]]]:
        """Pickled and copied as the plain tuple: the recipe holds a calendar's caches."""
        return tuple, (self(),)
