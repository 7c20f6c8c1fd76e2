"""The newest release-policy change of each vehicle group, as read from coc.policies.v1.

Validation decides with it and the workspace shows it; both keep it by
``shared.newest``'s rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.contracts.policies import PolicyChange, ReleasePolicy
from shared.newest import Newest


class PolicyTable(Newest[PolicyChange]):
    """Newest change per vehicle group (``shared.newest``'s rule)."""

    def __init__(self, changes: Iterable[PolicyChange] = ()) -> None:
        super().__init__(lambda change: change.vehicle_group, changes)

    def get(self, group: str) -> PolicyChange | None:
        return self.changes.get(group)

    def groups(self) -> list[str]:
        return sorted(self.changes)

    def policies(self) -> dict[str, ReleasePolicy]:
        """The release policy each group's newest change sets."""
        return {group: change.policy for group, change in self.changes.items()}
