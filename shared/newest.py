"""The newest change per key of a compacted topic, kept by one rule wherever such a table is read.

A compacted table (the release policies, the plants and vehicle groups) is read
whole from its beginning at start and then live, so older changes do come by: a
subscriber that reads the topic after a start-up read sees every change again,
and a change sent by one instance may reach another after a newer one. A change
set earlier than the one known for its key therefore never replaces it; of two
set at the same instant, the one taken last wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar


class Dated(Protocol):
    @property
    def set_at(self) -> dt.datetime: ...


C = TypeVar("C", bound=Dated)


class Newest(Generic[C]):
    """Newest change per key (``key_of``), by the module's rule."""

    def __init__(self, key_of: Callable[[C], str], changes: Iterable[C] = ()) -> None:
        self._key_of = key_of
        self._by_key: dict[str, C] = {}
        self.add_all(changes)

    def add(self, change: C) -> bool:
        """Take a change; True when it replaced what was known of its key (False: older, or a repeat)."""
        key = self._key_of(change)
        known = self._by_key.get(key)
        if known is not None and (known == change or change.set_at < known.set_at):
            return False
        self._by_key[key] = change
        return True

    def add_all(self, changes: Iterable[C]) -> None:
        for change in changes:
            self.add(change)

    @property
    def changes(self) -> Mapping[str, C]:
        """The newest change of each key, read-only."""
        return MappingProxyType(self._by_key)
