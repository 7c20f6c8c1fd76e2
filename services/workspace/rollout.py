"""The release policy of each vehicle group as the workspace shows it: the newest change per group.

The table is the compacted topic ``coc.policies.v1`` read whole at start and
followed live; validation reads the same topic and acts on it. A group with no
change follows validation's settings, which the page says rather than guesses.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.contracts.policies import PolicyChange


class PolicyTable:
    """Newest change per group; an older change arriving late does not replace a newer one."""

    def __init__(self) -> None:
        self._by_group: dict[str, PolicyChange] = {}

    def add(self, change: PolicyChange) -> bool:
        """Take a change; True when it is now the group's policy."""
        current = self._by_group.get(change.vehicle_group)
        if current is not None and current.set_at > change.set_at:
            return False
        self._by_group[change.vehicle_group] = change
        return True

    def add_all(self, changes: Iterable[PolicyChange]) -> None:
        for change in changes:
            self.add(change)

    def get(self, group: str) -> PolicyChange | None:
        return self._by_group.get(group)

    def groups(self) -> list[str]:
        return sorted(self._by_group)
