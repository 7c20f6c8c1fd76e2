"""Settings of the validation service: the rule choices, the release policy and the plant's time zone (COC_ variables).

The release policy here is the default: a group's policy set on coc.policies.v1
(``coc policy set``, the workspace's rollout page) beats it.
"""

from __future__ import annotations

from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from services.validation.policy import CheckDigitMode, ReleasePolicy, RulePolicy
from shared.settings import ServiceSettings


class ValidationSettings(ServiceSettings):
    """Per-manufacturer rule choices (COC_ environment variables, JSON for the mappings)."""

    check_digit: CheckDigitMode = Field(
        CheckDigitMode.OFF, description="Check-digit mode for WMIs not listed in check_digit_by_wmi"
    )
    check_digit_by_wmi: dict[str, CheckDigitMode] = Field(
        default_factory=dict, description='Check-digit mode per WMI, e.g. {"1FA": "error"}'
    )
    release_policy: dict[str, ReleasePolicy] = Field(
        default_factory=dict,
        description='Release policy per vehicle group unless coc.policies.v1 sets it, e.g. {"CHR": "review"}',
    )
    default_release_policy: ReleasePolicy = Field(
        ReleasePolicy.AUTO, description="Release policy of groups not listed in release_policy"
    )
    plant_timezone: str = Field(
        "Africa/Johannesburg",
        description="IANA time zone of the plant whose build records are validated (COC_PLANT_TIMEZONE): "
        "the rules about a calendar day (no date of manufacture or signature in the future) compare "
        "the dates a build states with today's date there; instants are kept in UTC",
    )

    @field_validator("plant_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{name!r} is no IANA time zone known here (e.g. Africa/Johannesburg, UTC)"
            ) from None
        return name

    def plant_zone(self) -> ZoneInfo:
        return ZoneInfo(self.plant_timezone)

    def policy(self) -> RulePolicy:
        """The frozen policy the pure rules take."""
        return RulePolicy(
            check_digit=self.check_digit,
            check_digit_by_wmi=MappingProxyType(dict(self.check_digit_by_wmi)),
            release_policy=MappingProxyType(dict(self.release_policy)),
            default_release_policy=self.default_release_policy,
        )
