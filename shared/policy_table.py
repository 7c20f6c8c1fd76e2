"""The newest release-policy change of each vehicle group, as read from coc.policies.v1.

Validation decides with it and the workspace shows it; both read the same
compacted topic, whole at start and then live, so both keep it by one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from shared.contracts.policies import PolicyChange, ReleasePolicy


class PolicyTable:
    """Newest change per group: a change set earlier than the one known for its group never replaces it.

    Older changes do come by: a subscriber that reads the topic from its
    beginning after a start-up read sees every change again, and a change sent
    by one instance may reach another after a newer one. Of two changes set at
    the same instant, the one taken last wins.
    """

    def __init__(self, changes: Iterable[PolicyChange] = ()) -> None:
        self._by_group: dict[str, PolicyChange] = {}
        self.add_all(changes)

    def add(self, change: PolicyChange) -> bool:
        """Take a change; True when it replaced what was known of its group (False: older, or a repeat)."""
        known = self._by_group.get(change.vehicle_group)
        if known is not None and (known == change or change.set_at < known.set_at):
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

    @property
    def changes(self) -> Mapping[str, PolicyChange]:
        """The newest change of each group, read-only."""
        return MappingProxyType(self._by_group)

    def policies(self) -> dict[str, ReleasePolicy]:
        """The release policy each group's newest change sets."""
        return {group: change.policy for group, change in self._by_group.items()}
