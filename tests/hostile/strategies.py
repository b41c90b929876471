"""Hostile leaves and the settings every fuzz test here shares.

Each strategy mixes well-formed values with the inputs that broke things before: NUL and
other control characters, lone surrogates, huge numbers, deep nesting, overlong text and
values of the wrong type."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Deterministic, so CI and a laptop try the same examples; bounded, so the package stays fast.
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

NASTY_TEXT = [
    "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202etxt.exe", "\u200b\u200d", "\ufeff",
    "<script>alert(1)</script>", "\"'><img src=x onerror=alert(1)>", "{{7*7}}", "{% raw %}",
    "<!channel>", "<@U123ABC>", "<http://evil.example|click>", "a\r\nBcc: x@evil.example",
    "x" * 50_000, "ş" * 300, "", " ", "\n\t", "9" * 5000, "null", "🎉" * 10, "\\u0000",
]
NASTY_NUMBERS = [0, -1, 2**31, 2**63, -(2**63) - 1, 10**400, 1.5,
                 float("inf"), float("nan"), True]


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=40),
                     st.text(st.characters(codec=None, exclude_categories=()), max_size=20))


def hostile_leaf() -> st.SearchStrategy[Any]:
    """Any JSON-ish value, including the wrong type for the field it lands in."""
    return st.one_of(hostile_text(), st.sampled_from(NASTY_NUMBERS), st.none(), st.booleans(),
                     st.integers(), st.lists(st.integers(), max_size=3),
                     st.just({"nested": {"deeper": [1, {"x": None}]}}))


def maybe(value: Any, leaf: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    """Mostly the real value, sometimes a hostile one in its place."""
    return st.one_of(st.just(value), hostile_leaf() if leaf is None else leaf)


def deep(depth: int = 3000) -> st.SearchStrategy[str]:
    """Nesting past Python's recursion limit, as raw JSON text."""
    return st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth])
