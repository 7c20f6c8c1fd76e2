"""The manufacturer's choices the rules and the release decision follow: a plain, frozen policy.

The pure modules (``rules``, ``decide``) take this object, not the service's
settings, so they are called the same way from the service, the workbench
commands, the bench and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class CheckDigitMode(StrEnum):
    """How the ISO 3779 check digit is enforced: mandatory in North America, not in the EU."""

    OFF = "off"
    WARN = "warn"
    ERROR = "error"


class ReleasePolicy(StrEnum):
    AUTO = "auto"  # clean records go straight on
    REVIEW = "review"  # every record waits for a reviewer
    HOLD = "hold"  # the group is not yet released


@dataclass(frozen=True)
class RulePolicy:
    """Check-digit enforcement per WMI and release policy per vehicle group."""

    check_digit: CheckDigitMode = CheckDigitMode.OFF
    check_digit_by_wmi: Mapping[str, CheckDigitMode] = field(default_factory=dict)
    release_policy: Mapping[str, ReleasePolicy] = field(default_factory=dict)
    default_release_policy: ReleasePolicy = ReleasePolicy.AUTO

    def check_digit_mode(self, wmi: str) -> CheckDigitMode:
        return self.check_digit_by_wmi.get(wmi, self.check_digit)

    def policy_for(self, vehicle_group: str) -> ReleasePolicy:
        return self.release_policy.get(vehicle_group, self.default_release_policy)
