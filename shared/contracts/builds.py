"""The MES build record: the public input contract of coc.builds.v1 and POST /v1/builds.

One record per built vehicle; a correction is the same VIN with the next revision.
The VIN is only loosely shaped here (a string the rules can read): whether it is
a valid ISO 3779 VIN is a finding with an owner, not a rejected message.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator

from shared.contracts.approvals import approval_key
from shared.contracts.base import Contract, Name, PersonName, Text

MAX_REVISION = 1_000_000  # corrections of one vehicle; a database stores 8-byte integers at most
MAX_MASS_KG = 1_000_000  # heavier than any road vehicle or trailer


class ApprovalRef(Contract):
    """Which approved type, variant and version this vehicle was built to."""

    number: Name = Field(min_length=1, max_length=100, description="Type-approval number")
    type: Name = Field(min_length=1, max_length=100, description="Approved type")
    variant: Name = Field(min_length=1, max_length=100, description="Approved variant")
    version: Name = Field(min_length=1, max_length=100, description="Approved version")

    @property
    def key(self) -> str:
        return approval_key(self.number, self.type, self.variant, self.version)


class FittedTyre(Contract):
    """The approved tyre and rim option fitted on one axle (IVI TyreAxleGroup/TyreNumber)."""

    axle: int = Field(ge=1, le=99, description="Axle number, 1 at the front (IVI AxleNumber)")
    option: int = Field(ge=1, le=99, description="Approved tyre option of that axle (IVI TyreNumber)")


SHA256_HEX = r"^[0-9a-f]{64}$"
REFERENCE_ID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class PreviousStage(Contract):
    """The base vehicle's certificate a later stage completes (multistage; IVI ManufacturerGroup).

    Read from the previous stage's IVI 2.0 document, which the approval authority
    gives the next-stage manufacturer (``coc ivi import --base``, the archive's
    ``POST /v1/base-certificates``): its identity and what its last stage states.
    """

    reference_id: str = Field(pattern=REFERENCE_ID, description="IviReferenceId of the base certificate")
    sha256: str = Field(pattern=SHA256_HEX, description="SHA-256 (hex) of the base certificate's bytes")
    vin: str = Field(min_length=1, max_length=32, description="VIN the base certificate states")
    stage: int = Field(
        ge=1, le=98, description="ManufacturerStageNumber of the base certificate's last stage"
    )
    approval_number: str = Field(
        min_length=1, max_length=35, description="TypeApprovalNumber of the base certificate"
    )
    type: str = Field(min_length=1, max_length=15, description="Type of the base certificate")
    variant: str = Field(min_length=1, max_length=25, description="Variant of the base certificate")
    version: str = Field(min_length=1, max_length=35, description="Version of the base certificate")
    manufacturer: Text = Field(
        "", max_length=150, description="ManufacturerName of the base certificate's last stage"
    )

    @field_validator("vin")
    @classmethod
    def _vin_upper(cls, value: str) -> str:
        return value.upper()


class Correction(Contract):
    """Why a build record is a re-issue: the archived certificate it corrects and the approval change behind it.

    A re-issue is the VIN's archived build record sent again as its next
    revision with this set: it gets a new IviReferenceId (from its record id)
    and the next IviVersionNumber, the same XSD version and a new time
    (EReg IVI guidelines 1.7, 1.12); TypeApprovalIssueDate stays the approval's.
    """

    of_revision: int = Field(
        ge=1, le=MAX_REVISION, description="Revision of the archived certificate corrected"
    )
    of_version_number: int = Field(ge=1, description="Its IviVersionNumber")
    approval_key: str = Field(
        min_length=1, max_length=400, description="Key of the approval that was corrected"
    )
    approval_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the corrected approval's master data"
    )
    changed_by: PersonName = Field(min_length=1, max_length=128, description="Who changed the approval")
    started_by: PersonName = Field(min_length=1, max_length=128, description="Who started the re-issue")
    job: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The re-issue job's id"
    )


class BuildRecord(Contract):
    """What the factory MES knows of one built vehicle."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    vin: str = Field(min_length=1, max_length=32, description="Vehicle identification number")
    build_id: Name = Field(
        min_length=1,
        max_length=64,
        description="The MES's own id of the build; letters, digits, - _ . , / ( ) * + : #",
    )
    revision: int = Field(
        1, ge=1, le=MAX_REVISION, description="1 for the first record of a VIN, +1 per correction"
    )
    manufactured_on: dt.date | None = Field(
        None,
        description="Date of manufacture (IVI DateManufactureVehicle); required where the category's CoC "
        "model states it (every category but L)",
    )
    plant: Name = Field(
        min_length=1,
        max_length=64,
        description="Plant that built the vehicle, as the compliance lead's master data names it; "
        "letters, digits, spaces and - _ . , / ( ) * + : #",
    )
    vehicle_group: Name = Field(
        min_length=1,
        max_length=64,
        description="Release group, e.g. a model line (release policy), as the compliance lead's master data "
        "names it; letters, digits, spaces and - _ . , / ( ) * + : #",
    )
    approval: ApprovalRef = Field(description="Approved type, variant and version built to")
    intended_country: str | None = Field(
        None, max_length=8, description="Vienna code of the intended registration country (e.g. NL, D)"
    )
    actual_mass_kg: int | None = Field(
        None, ge=0, le=MAX_MASS_KG, description="Actual mass of this vehicle in kg (IVI ActualMass)"
    )
    colours: tuple[Annotated[str, Field(max_length=8)], ...] = Field(
        default=(),
        max_length=10,
        description="IVI colour codes (1-10) of the bodywork, main colour first; each at most once",
    )
    tyres: tuple[FittedTyre, ...] = Field(
        default=(), max_length=99, description="The approved tyre option fitted on each axle"
    )
    released_at: AwareDatetime | None = Field(
        None,
        description="When the MES released the vehicle; IviVersionDateTime. Set by intake if absent",
    )
    signature_date: dt.date | None = Field(
        None,
        description="SignatureDate of the certificate, when it is not the date of released_at "
        "(an imported certificate keeps its own); never before manufacture, never in the future",
    )
    correction: Correction | None = Field(
        None, description="Set on a re-issue after an approval correction: what it corrects and why"
    )
    previous_stage: PreviousStage | None = Field(
        None,
        description="A completed (or later incomplete) stage of a multistage vehicle: the base vehicle's "
        "certificate it builds on",
    )

    @field_validator("vin")
    @classmethod
    def _vin_upper(cls, value: str) -> str:
        return value.upper()

    @property
    def record_id(self) -> str:
        """VIN:revision, the identity of a record at every stage (design, "Identity")."""
        return f"{self.vin}:{self.revision}"
