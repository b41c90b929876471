"""Registries of plug-in kinds (source connectors, alert sinks): config `kind` → class.

Built-in kinds register through the same small check an extension would, and start-up
fails on two classes claiming one kind or a config model whose `kind` is not its own.
"""

from __future__ import annotations

from typing import Any


def kind_registry(classes: tuple[type[Any], ...], what: str) -> dict[str, type[Any]]:
    registry: dict[str, type[Any]] = {}
    for plugin in classes:
        kind = plugin.kind
        if kind in registry:
            raise RuntimeError(f"two {what}s claim kind {kind!r}")
        literal = plugin.Config.model_fields["kind"].annotation
        if getattr(literal, "__args__", None) != (kind,):
            raise RuntimeError(f"{plugin.__name__}.Config.kind must be Literal[{kind!r}]")
        registry[kind] = plugin
    return registry
