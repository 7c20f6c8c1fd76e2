"""Settings of the validation service: the rule choices and the release policy (COC_ variables).

The release policy here is the default: a group's policy set on coc.policies.v1
(``coc policy set``, the workspace's rollout page) beats it. The plant's time zone
(COC_PLANT_TIMEZONE) is a shared setting (``shared.settings``): the workspace shows times in it.
"""

from __future__ import annotations

from types import MappingProxyType

from pydantic import Field

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

    def policy(self) -> RulePolicy:
        """The frozen policy the pure rules take."""
        return RulePolicy(
            check_digit=self.check_digit,
            check_digit_by_wmi=MappingProxyType(dict(self.check_digit_by_wmi)),
            release_policy=MappingProxyType(dict(self.release_policy)),
            default_release_policy=self.default_release_policy,
        )
