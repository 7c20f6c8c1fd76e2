"""The record page's stage block: the record type and, for a later stage, the base vehicle's certificate.

The record type is the approval's ``StageOfCompletion`` (``Approval.record_type``):
complete, incomplete or completed vehicle. A later stage's build names the base
certificate it builds on (``BuildRecord.previous_stage``); when that certificate
was imported into the archive, the page links to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from shared.contracts import Approval
from shared.contracts.builds import PreviousStage

RECORD_TYPES: Final = {
    "C": "complete vehicle",
    "I": "incomplete vehicle (a later stage completes it)",
    "V": "completed vehicle (a later stage of a multistage vehicle)",
}
SEAL_NOTE: Final = (
    "its seal was intact when it was imported; whether its signer is the base vehicle's manufacturer is for "
    "the authority that gave the certificate, not for this product"
)


@dataclass(frozen=True)
class StageView:
    """What the record page says about the vehicle's stage."""

    record_type: str  # C, I or V
    meaning: str
    previous: PreviousStage | None
    base_stored: bool  # the base certificate is in the archive: the page links to it
    seal_note: str = SEAL_NOTE


def record_type_of(approval: Approval | None, record: dict[str, Any] | None) -> str | None:
    """The approval's record type, else what the status record says, else unknown."""
    if approval is not None:
        return approval.record_type
    named = (record or {}).get("record_type")
    return named if named in RECORD_TYPES else None


def previous_stage_of(received: dict[str, Any] | None) -> PreviousStage | None:
    """The previous stage the build as received names, if any (a malformed one is not shown)."""
    raw = ((received or {}).get("build") or {}).get("previous_stage")
    if not isinstance(raw, dict):
        return None
    try:
        return PreviousStage.model_validate(raw)
    except ValidationError:
        return None


def stage_view(
    approval: Approval | None,
    record: dict[str, Any] | None,
    received: dict[str, Any] | None,
    base_stored: bool,
) -> StageView | None:
    kind = record_type_of(approval, record)
    previous = previous_stage_of(received)
    if kind is None and previous is None:
        return None
    kind = kind or "V"
    return StageView(kind, RECORD_TYPES[kind], previous, base_stored and previous is not None)
