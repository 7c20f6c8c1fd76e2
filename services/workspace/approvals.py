"""Approval master data as the workspace shows it: every version seen per approval key, and what changed.

The approvals topic is compacted: it keeps the newest value per key, so the
history a person asks for ("who changed which field, when") is kept here, from
the messages this workspace has read (from the topic's beginning at its first
start, live afterwards). Pure: messages in, history out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shared.contracts import Approval
from shared.contracts.approvals import master_data_sha256


@dataclass(frozen=True)
class Change:
    """One value of an approval key as it arrived, and the fields it changed from the one before."""

    approval: Approval
    at: dt.datetime
    by: str
    changed: tuple[str, ...]  # dotted paths; empty for the first version seen

    @property
    def digest(self) -> str:
        return master_data_hash(self.approval)


def master_data_hash(approval: Approval) -> str:
    return master_data_sha256(approval)


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A nested value as (dotted path, leaf) pairs; list items are numbered from 1."""
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        for number, item in enumerate(value, start=1):
            yield from flatten(item, f"{prefix}[{number}]")
    else:
        yield prefix, value


def changed_fields(before: Approval, after: Approval) -> tuple[str, ...]:
    old = dict(flatten(before.model_dump(mode="json")))
    new = dict(flatten(after.model_dump(mode="json")))
    return tuple(sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path)))


class ApprovalBook:
    """Every approval key with the versions of its data seen, oldest first."""

    def __init__(self) -> None:
        self._history: dict[str, list[Change]] = {}

    def add(self, approval: Approval, at: dt.datetime, by: str) -> Change | None:
        """Take a message; None when it repeats the current value (a redelivery or a re-read)."""
        history = self._history.setdefault(approval.key, [])
        if history and history[-1].approval == approval:
            return None
        changed = changed_fields(history[-1].approval, approval) if history else ()
        change = Change(approval, at, by, changed)
        history.append(change)
        return change

    def current(self) -> list[Approval]:
        """The newest value of every key, by type, variant, version and number."""
        newest = [history[-1].approval for history in self._history.values()]
        return sorted(newest, key=lambda a: (a.type, a.variant, a.version, a.number))

    def history(self, key: str) -> list[Change]:
        return list(self._history.get(key, ()))
