"""Findings: what a rule says about a record, and who must act on it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shared.contracts.base import Contract

# Validation's refusal of a build whose VIN and revision were received with other content: the
# status fold lets it speak for its revision after any stage (services.status.fold.supersedes).
REVISION_REUSED = "REVISION_REUSED"


class Severity(StrEnum):
    ERROR = "error"  # blocks the record until corrected
    WARNING = "warning"  # needs a reviewer's decision


class Owner(StrEnum):
    TYPE_APPROVAL = "type-approval"
    PRODUCTION = "production"
    COMPLIANCE = "compliance"
    INTEGRATION = "integration"


class Finding(Contract):
    """One problem with a record, in words a person can act on."""

    code: str = Field(description="Stable rule code, e.g. VIN_LENGTH")
    path: str = Field(description="IVI field path it concerns, e.g. CocDataGroup/MassGroup/ActualMass")
    message: str = Field(description="What is wrong and what to do")
    severity: Severity = Field(description="error blocks; warning needs review")
    owner: Owner = Field(description="Team that must act")
