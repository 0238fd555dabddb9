"""One registry shape for everything chosen by name in the config: data layouts, heads,
1-D nets, baselines and tabular members.

A :class:`Registry` maps names to entries (classes, or factories). :meth:`Registry.register`
adds one (as a call, or as a class decorator) and refuses a name registered twice;
:meth:`Registry.get` looks one up, and an unknown name is a
:class:`~spectrovision.errors.ConfigError` naming the config key and listing the choices.
An entry may be a ``"module:attribute"`` string, imported when first asked for, so a
registry need not import the code it names (a layout from another package). Names keep
their registration order, which the schema's enums follow (tests/test_registry.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar, overload

from .errors import ConfigError

T = TypeVar("T")
E = TypeVar("E")


class Registry(Generic[T]):
    """Entries of one kind (``kind``, e.g. ``"head"``) chosen by config key ``key``
    (e.g. ``"models/<name>/head"``), optionally filled from ``entries``."""

    def __init__(self, kind: str, key: str, entries: Mapping[str, T | str] | None = None
                 ) -> None:
        self.kind, self.key = kind, key
        self._entries: dict[str, T | str] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    @overload
    def register(self, name: str) -> Callable[[E], E]: ...

    @overload
    def register(self, name: str, entry: T | str) -> T | str: ...

    def register(self, name: str, entry: T | str | None = None) -> object:
        """Register ``entry`` (or ``"module:attribute"``, imported lazily) under ``name``;
        without ``entry``, a decorator registering what it decorates. A name registered
        twice is a ValueError (two entries would silently shadow one another)."""
        if entry is None:
            def decorate(found: E) -> E:
                self.register(name, found)  # type: ignore[arg-type]
                return found
            return decorate
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice (as "
                             f"{describe(self._entries[name])} and {describe(entry)})")
        if isinstance(entry, str) and ":" not in entry:
            raise ValueError(f"{self.kind} '{name}': a lazy entry is 'module:attribute', "
                             f"got {entry!r}")
        self._entries[name] = entry
        return entry

    def get(self, name: str, key: str | None = None) -> T:
        """The entry registered under ``name``; an unknown name is a ConfigError naming
        config key ``key`` (default: the registry's) and the choices."""
        if name not in self._entries:
            raise ConfigError(f"config key '{key or self.key}': unknown {self.kind} '{name}'. "
                              f"Fix: choose one of {', '.join(self._entries)}.")
        found = self._entries[name]
        if isinstance(found, str):
            module, _, attribute = found.partition(":")
            found = getattr(importlib.import_module(module), attribute)
            self._entries[name] = found
        return found  # type: ignore[return-value]

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)

    def copy(self) -> Registry[T]:
        """A registry with the same entries (tests register throwaway entries in one)."""
        return Registry(self.kind, self.key, dict(self._entries))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def describe(entry: object) -> str:
    """An entry as error messages name it."""
    return entry if isinstance(entry, str) else getattr(entry, "__qualname__", repr(entry))
