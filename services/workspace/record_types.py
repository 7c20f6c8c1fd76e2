"""Readiness by record type: complete (C), incomplete (I) and completed (V) vehicles per state.

Status counts them while it folds the status events (``/v1/readiness``: ``by_record_type``,
"none" for vehicles no event has told the type of yet, such as input rejected at intake). A record
type is shown by its meaning from the code table ``stage_of_completion`` (``shared.codes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.codes import meaning

RECORD_TYPES = ("C", "I", "V")  # always shown, in this order, even when none is counted
NO_RECORD_TYPE = "none"  # status's key for vehicles whose record type no event told


@dataclass(frozen=True)
class RecordTypeRow:
    """One row of the board's record types: vehicles per state; ``filterable`` when a list can filter by it."""

    code: str
    name: str
    counts: dict[str, int]

    @property
    def filterable(self) -> bool:
        return self.code != NO_RECORD_TYPE


def record_type_name(code: str) -> str:
    """The record type as people read it, "Completed vehicle (V)"; the code alone where no table names it."""
    if code == NO_RECORD_TYPE:
        return "Not known yet"
    name = meaning("stage_of_completion", code)
    return f"{name[:1].upper()}{name[1:]} ({code})" if name else code


def record_types_of(readiness: Mapping[str, Any], states: list[str]) -> list[RecordTypeRow]:
    """The board's record-type rows: C, I and V always, any other counted type after them, "none" last."""
    by_type: Mapping[str, Mapping[str, int]] = readiness.get("by_record_type") or {}
    others = sorted(str(code) for code in by_type if code not in RECORD_TYPES and code != NO_RECORD_TYPE)
    codes = [*RECORD_TYPES, *others, *([NO_RECORD_TYPE] if NO_RECORD_TYPE in by_type else [])]
    return [
        RecordTypeRow(
            code=code,
            name=record_type_name(code),
            counts={s: int((by_type.get(code) or {}).get(s, 0)) for s in states},
        )
        for code in codes
    ]
