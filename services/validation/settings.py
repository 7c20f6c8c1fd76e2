"""Settings of the validation rules and the release policy."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shared.settings import ServiceSettings


class CheckDigitMode(StrEnum):
    """How the ISO 3779 check digit is enforced: mandatory in North America, not in the EU."""

    OFF = "off"
    WARN = "warn"
    ERROR = "error"


class ReleasePolicy(StrEnum):
    AUTO = "auto"  # clean records go straight on
    REVIEW = "review"  # every record waits for a reviewer
    HOLD = "hold"  # the group is not yet released


class RuleSettings(ServiceSettings):
    """Per-manufacturer rule choices (COC_ environment variables, JSON for the mappings)."""

    check_digit: CheckDigitMode = Field(
        CheckDigitMode.OFF, description="Check-digit mode for WMIs not listed in check_digit_by_wmi"
    )
    check_digit_by_wmi: dict[str, CheckDigitMode] = Field(
        default_factory=dict, description='Check-digit mode per WMI, e.g. {"1FA": "error"}'
    )
    release_policy: dict[str, ReleasePolicy] = Field(
        default_factory=dict, description='Release policy per vehicle group, e.g. {"CHR": "review"}'
    )
    default_release_policy: ReleasePolicy = Field(
        ReleasePolicy.AUTO, description="Release policy of groups not listed in release_policy"
    )

    def check_digit_mode(self, wmi: str) -> CheckDigitMode:
        return self.check_digit_by_wmi.get(wmi, self.check_digit)

    def policy_for(self, vehicle_group: str) -> ReleasePolicy:
        return self.release_policy.get(vehicle_group, self.default_release_policy)
