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

from services.workspace.upload.diff import field_changes
from shared.contracts import Approval
from shared.contracts.approvals import master_data_sha256, same_master_data

# Who an approval without a source came from: intake's API, with the type-approval team's token.
PUBLISHER = "type-approval (intake API)"


@dataclass(frozen=True)
class Change:
    """One value of an approval key as it arrived, and the fields it changed from the one before."""

    approval: Approval
    at: dt.datetime
    by: str
    changed: tuple[str, ...]  # columns (IVI paths or contract fields); empty for the first version seen
    via: str = "intake API"
    comment: str = ""

    @property
    def digest(self) -> str:
        return master_data_hash(self.approval)

    @property
    def sentence(self) -> str:
        """Who changed what, as a person says it: "Thandi Nkosi changed 2 fields in the workspace"."""
        where = "in the workspace" if self.via == "workspace" else "through intake's API"
        if not self.changed:
            return f"{self.by} published the first version seen {where}."
        count = f"{len(self.changed)} field" + ("s" if len(self.changed) != 1 else "")
        return f"{self.by} changed {count} {where}."


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
    """The columns (IVI paths, or the contract's fields) whose values differ; who published them aside."""
    return tuple(sorted(change.path for change in field_changes(before, after)))


class ApprovalBook:
    """Every approval key with the versions of its data seen, oldest first."""

    def __init__(self) -> None:
        self._history: dict[str, list[Change]] = {}

    def add(self, approval: Approval, at: dt.datetime, by: str = PUBLISHER) -> Change | None:
        """Take a message; None when it holds the current master data (a redelivery, a re-read, a repeat).

        Named by its ``source`` when it has one (then also timed by it), else by ``by``.
        """
        history = self._history.setdefault(approval.key, [])
        if history and same_master_data(history[-1].approval, approval):
            return None
        changed = changed_fields(history[-1].approval, approval) if history else ()
        source = approval.source
        if source is None:
            change = Change(approval, at, by, changed)
        else:
            change = Change(approval, source.at, source.by, changed, source.via, source.comment)
        history.append(change)
        return change

    def get(self, key: str) -> Approval | None:
        """The current value of ``key``."""
        history = self._history.get(key)
        return history[-1].approval if history else None

    def current(self) -> list[Approval]:
        """The newest value of every key, by type, variant, version and number."""
        newest = [history[-1].approval for history in self._history.values()]
        return sorted(newest, key=lambda a: (a.type, a.variant, a.version, a.number))

    def history(self, key: str) -> list[Change]:
        return list(self._history.get(key, ()))
