"""The newest change of each plant and vehicle group, as read from coc.masterdata.v1.

Validation decides with it, the workspace's rollout page and ``coc groups``
show it; all keep it by ``shared.newest``'s rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.contracts.masterdata import MasterDataChange, MasterKind, master_key
from shared.newest import Newest


class MasterTable(Newest[MasterDataChange]):
    """Newest change per kind and name (key ``kind:name``, ``shared.newest``'s rule)."""

    def __init__(self, changes: Iterable[MasterDataChange] = ()) -> None:
        super().__init__(lambda change: change.key, changes)

    def get(self, kind: MasterKind, name: str) -> MasterDataChange | None:
        return self.changes.get(master_key(kind, name))

    def is_known(self, kind: MasterKind, name: str) -> bool:
        change = self.get(kind, name)
        return change is not None and change.known

    def known(self, kind: MasterKind) -> frozenset[str]:
        """The names of ``kind`` builds may carry now."""
        return frozenset(c.name for c in self.changes.values() if c.kind is kind and c.known)
