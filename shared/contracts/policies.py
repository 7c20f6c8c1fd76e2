"""Release policies per vehicle group: what a compliance lead sets, read by validation at run time.

The table lives on the compacted topic ``coc.policies.v1`` (key = vehicle
group): the newest change of a group is its policy; a group with none follows
validation's settings (``COC_RELEASE_POLICY``, ``COC_DEFAULT_RELEASE_POLICY``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.base import Contract, Name, PersonName, Text


class ReleasePolicy(StrEnum):
    AUTO = "auto"  # clean records go straight on
    REVIEW = "review"  # every record waits for a reviewer
    HOLD = "hold"  # the group is not yet released


class PolicyChange(Contract):
    """A vehicle group's release policy was set, by whom and when (coc.policies.v1, key = group)."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    vehicle_group: Name = Field(
        min_length=1,
        max_length=64,
        description="Release group the policy applies to (the key); letters, digits, spaces and - _ . , / ( ) * + : #",
    )
    policy: ReleasePolicy = Field(
        description="auto: clean records go on; review: each waits for a reviewer; hold: none is released"
    )
    set_by: PersonName = Field(min_length=1, max_length=128, description="Name of the person who set it")
    set_at: AwareDatetime = Field(description="When it was set")
    comment: Text | None = Field(None, max_length=2000, description="Why, as the person said")
