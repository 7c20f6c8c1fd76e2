"""What an upload changes: per approval key, field by field by IVI path, old → new; a key not seen is new."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.workspace.upload.columns import cells
from shared.contracts import Approval


@dataclass(frozen=True)
class FieldChange:
    """One column's value before and after; None where the element is absent."""

    path: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class KeyDiff:
    """One uploaded approval against the current version of its key."""

    approval: Approval
    before: Approval | None
    changes: tuple[FieldChange, ...]

    @property
    def new(self) -> bool:
        return self.before is None

    @property
    def unchanged(self) -> bool:
        return self.before is not None and not self.changes


def field_changes(before: Approval, after: Approval) -> tuple[FieldChange, ...]:
    """The columns whose values differ, in the order of the new value's columns (then those it lost).

    Who published a version (``source``) is not master data and is no column.
    """
    old, new = cells(before), cells(after)
    order = [*new, *(path for path in old if path not in new)]
    return tuple(
        FieldChange(path, old.get(path), new.get(path)) for path in order if old.get(path) != new.get(path)
    )


def against(current: Callable[[str], Approval | None], approvals: Sequence[Approval]) -> list[KeyDiff]:
    """Each uploaded approval with the current version of its key (``current``) and what it changes."""
    found = []
    for approval in approvals:
        before = current(approval.key)
        changes = field_changes(before, approval) if before is not None else ()
        found.append(KeyDiff(approval, before, changes))
    return found
