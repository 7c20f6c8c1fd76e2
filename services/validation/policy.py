"""The manufacturer's choices the rules and the release decision follow: a plain, frozen policy.

The pure modules (``rules``, ``decide``) take this object, not the service's
settings, so they are called the same way from the service, the workbench
commands, the bench and the tests. The release policy of a vehicle group is
data (coc.policies.v1): ``PolicyInForce`` lays the newest change per group over
the settings' policy, which stays the default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.contracts.policies import PolicyChange, ReleasePolicy
from shared.master_table import MasterTable
from shared.policy_table import PolicyTable

__all__ = ["CheckDigitMode", "PolicyInForce", "ReleasePolicy", "RulePolicy"]


class CheckDigitMode(StrEnum):
    """How the ISO 3779 check digit is enforced: mandatory in North America, not in the EU."""

    OFF = "off"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class RulePolicy:
    """Check-digit enforcement per WMI, release policy per vehicle group, the plants and groups known.

    ``known_groups`` and ``known_plants`` are the compliance lead's master data
    (coc.masterdata.v1); None where it is not read (a workbench check of sample
    files), and then no build is held to it. The service always reads it.
    """

    check_digit: CheckDigitMode = CheckDigitMode.OFF
    check_digit_by_wmi: Mapping[str, CheckDigitMode] = field(default_factory=dict)
    release_policy: Mapping[str, ReleasePolicy] = field(default_factory=dict)
    default_release_policy: ReleasePolicy = ReleasePolicy.AUTO
    known_groups: frozenset[str] | None = None
    known_plants: frozenset[str] | None = None

    def check_digit_mode(self, wmi: str) -> CheckDigitMode:
        return self.check_digit_by_wmi.get(wmi, self.check_digit)

    def policy_for(self, vehicle_group: str) -> ReleasePolicy:
        return self.release_policy.get(vehicle_group, self.default_release_policy)

    def with_groups(self, overrides: Mapping[str, ReleasePolicy]) -> RulePolicy:
        """This policy with ``overrides`` replacing the release policy of their groups."""
        return replace(self, release_policy=MappingProxyType({**self.release_policy, **overrides}))


class PolicyInForce:
    """The release policy validation decides with: the newest change per group over the settings' policy.

    ``base`` is the settings' policy; the table (``shared.policy_table``) keeps
    the newest change of each group read from coc.policies.v1, and ``policy``
    is the base with those changes laid over it. ``apply`` also says when a
    group's waiting records are to be decided again: on a newer change, and
    once per group after a start, for the change that was read at start but
    may have been made while no validation ran (``load``).
    """

    def __init__(self, base: RulePolicy) -> None:
        self.base = base
        self.table = PolicyTable()
        self.master: MasterTable | None = None  # the plants and groups known, once read (``load_master``)
        self.policy = base
        self._unsettled: set[str] = set()
        self._unsettled_names: set[str] = set()

    def load(self, changes: Iterable[PolicyChange]) -> None:
        """The changes read at start, in topic order; their groups are caught up by ``apply`` later."""
        self.table.add_all(changes)
        self._laid_over()
        self._unsettled = set(self.table.groups())

    def apply(self, change: PolicyChange) -> bool:
        """Take a change from the topic; True when its group's waiting records must be decided again."""
        group = change.vehicle_group
        if self.table.add(change):
            self._laid_over()
            self._unsettled.discard(group)
            return True
        if group in self._unsettled and self.table.get(group) == change:
            self._unsettled.discard(group)
            return True
        return False

    def load_master(self, changes: Iterable[MasterDataChange]) -> None:
        """The plants and groups read at start: from here on a build naming another one is blocked.

        As with policies, each name read here is caught up once by ``learn``,
        for a change made while no validation ran.
        """
        self.master = MasterTable(changes)
        self._laid_over()
        self._unsettled_names = set(self.master.changes)

    def learn(self, change: MasterDataChange) -> bool:
        """Take a plant or group change; True when the waiting records naming it must be decided again."""
        if self.master is None:
            self.master = MasterTable()
        if self.master.add(change):
            self._laid_over()
            self._unsettled_names.discard(change.key)
            return True
        if change.key in self._unsettled_names and self.master.changes.get(change.key) == change:
            self._unsettled_names.discard(change.key)
            return True
        return False

    def policy_for(self, vehicle_group: str) -> ReleasePolicy:
        return self.policy.policy_for(vehicle_group)

    def _laid_over(self) -> None:
        policy = self.base.with_groups(self.table.policies())
        if self.master is not None:
            policy = replace(
                policy,
                known_groups=self.master.known(MasterKind.VEHICLE_GROUP),
                known_plants=self.master.known(MasterKind.PLANT),
            )
        self.policy = policy
