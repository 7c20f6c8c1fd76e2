"""The newest change of each plant and vehicle group, as read from coc.masterdata.v1.

Validation decides with it, the workspace's rollout page and ``coc groups``
show it; all read the same compacted topic, whole at start and then live, so
all keep it by one rule: a change set earlier than the one known for its name
never replaces it (the topic is read again from its beginning after a start).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from shared.contracts.masterdata import MasterDataChange, MasterKind, master_key


class MasterTable:
    """Newest change per kind and name; of two set at the same instant, the one taken last wins."""

    def __init__(self, changes: Iterable[MasterDataChange] = ()) -> None:
        self._by_key: dict[str, MasterDataChange] = {}
        self.add_all(changes)

    def add(self, change: MasterDataChange) -> bool:
        """Take a change; True when it replaced what was known of its name (False: older, or a repeat)."""
        known = self._by_key.get(change.key)
        if known is not None and (known == change or change.set_at < known.set_at):
            return False
        self._by_key[change.key] = change
        return True

    def add_all(self, changes: Iterable[MasterDataChange]) -> None:
        for change in changes:
            self.add(change)

    def get(self, kind: MasterKind, name: str) -> MasterDataChange | None:
        return self._by_key.get(master_key(kind, name))

    def is_known(self, kind: MasterKind, name: str) -> bool:
        change = self.get(kind, name)
        return change is not None and change.known

    def known(self, kind: MasterKind) -> frozenset[str]:
        """The names of ``kind`` builds may carry now."""
        return frozenset(c.name for c in self._by_key.values() if c.kind is kind and c.known)

    @property
    def changes(self) -> Mapping[str, MasterDataChange]:
        """The newest change of each name by key (``kind:name``), read-only."""
        return MappingProxyType(self._by_key)
