"""Findings the status tests fold, count and store: one of each owning team, errors and a warning."""

from __future__ import annotations

from shared.contracts import Finding, Owner, Severity

MASS = Finding(
    code="MASS_ABOVE_MAX",
    path="CocDataGroup/MassGroup/ActualMass",
    message="actual mass 1650 kg exceeds the approved maximum 1600 kg",
    severity=Severity.ERROR,
    owner=Owner.PRODUCTION,
)
TYRE = Finding(
    code="TYRE_UNLISTED",
    path="CocDataGroup/TyreGroup",
    message="tyre 205/55 R16 is not among the approved options",
    severity=Severity.ERROR,
    owner=Owner.PRODUCTION,
)
APPROVAL = Finding(
    code="APPROVAL_UNKNOWN",
    path="CocDataGroup/TypeApprovalNumber",
    message="no approval e1*2018/858*00001*01; publish it",
    severity=Severity.ERROR,
    owner=Owner.TYPE_APPROVAL,
)
COLOUR = Finding(
    code="COLOUR_UNLISTED",
    path="CocDataGroup/ColourOfVehicle",
    message="colour 'sunset' is not among the approved colours; accept or correct",
    severity=Severity.WARNING,
    owner=Owner.COMPLIANCE,
)
