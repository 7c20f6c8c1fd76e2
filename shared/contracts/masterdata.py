"""Plants and vehicle groups: master data the compliance lead keeps, read by validation at run time.

A build names its plant and its vehicle group (its release group); both are
names the company knows, not whatever an MES sends. The lead makes a name known
(or withdraws it) on the compacted topic ``coc.masterdata.v1`` (key =
``kind:name``), from the workspace's rollout page or ``coc groups``; validation
blocks a build naming an unknown one (GROUP_UNKNOWN, PLANT_UNKNOWN, owned by
compliance) and decides it again when the name becomes known, and the rollout
page sets a release policy only for a known group.

Kept apart from the release policies (coc.policies.v1): that a group exists
and how it is released are separate facts set at separate times; a known group
without a policy follows validation's default, and a plant has no policy at all.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.base import Contract, Name, PersonName, Text


class MasterKind(StrEnum):
    PLANT = "plant"
    VEHICLE_GROUP = "vehicle_group"


class MasterDataChange(Contract):
    """A plant or vehicle group made known or withdrawn, by whom and when (coc.masterdata.v1, key = kind:name)."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    kind: MasterKind = Field(description="plant or vehicle_group: the build record field that names it")
    name: Name = Field(
        min_length=1,
        max_length=64,
        description="The name as build records carry it; letters, digits, spaces and - _ . , / ( ) * + : #",
    )
    known: bool = Field(
        True, description="True: builds may name it; False: withdrawn, builds naming it are blocked again"
    )
    set_by: PersonName = Field(min_length=1, max_length=128, description="Name of the person who set it")
    set_at: AwareDatetime = Field(description="When it was set")
    comment: Text | None = Field(None, max_length=2000, description="Why, as the person said")

    @property
    def key(self) -> str:
        """The topic's key: one entry per kind and name, the newest kept by compaction."""
        return master_key(self.kind, self.name)


def master_key(kind: MasterKind, name: str) -> str:
    return f"{kind.value}:{name}"
