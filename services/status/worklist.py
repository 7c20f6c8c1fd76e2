"""Status's pure worklist logic: what a waiting record keeps for the worklists, and one page of them.

A team's worklist is the records waiting for a person (blocked, needs review,
held) with findings that team owns, oldest first: the order a team works
through them, and one that stays put while the team works (a record that
changes goes to the end). Ties are broken by VIN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.status.fold import StatusRecord
from shared.contracts.findings import Owner

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class WorklistQuery:
    """One page of one team's worklist, with the filters a person set."""

    owner: Owner
    group: str | None = None
    code: str | None = None
    min_age_s: int | None = None
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True, order=True)
class OpenEntry:
    """What the worklist needs to select and order a waiting record for one team."""

    updated_at: dt.datetime
    vin: str
    group: str | None
    codes: frozenset[str]  # codes of the findings this team owns


def open_keys(record: StatusRecord) -> list[str]:
    """``owner|code`` of each finding of the record, as the open collection keeps them."""
    return [f"{finding.owner.value}|{finding.code}" for finding in record.findings]


def entries_by_owner(
    rows: Iterable[tuple[str, dt.datetime, str | None, Sequence[str]]],
) -> dict[str, list[OpenEntry]]:
    """Per team, its entries oldest first, from (vin, updated_at, group, ``owner|code`` keys) rows."""
    codes: dict[str, dict[str, set[str]]] = {}
    found: dict[str, list[tuple[str, dt.datetime, str | None]]] = {}
    for vin, updated_at, group, keys in rows:
        for key in keys:
            owner, _, code = key.partition("|")
            per_vin = codes.setdefault(owner, {})
            if vin not in per_vin:
                per_vin[vin] = set()
                found.setdefault(owner, []).append((vin, updated_at, group))
            per_vin[vin].add(code)
    return {
        owner: sorted(OpenEntry(at, vin, group, frozenset(codes[owner][vin])) for vin, at, group in rows_)
        for owner, rows_ in found.items()
    }


def select(
    entries: Sequence[OpenEntry], query: WorklistQuery, now: dt.datetime
) -> tuple[list[OpenEntry], int]:
    """The page ``query`` asks for out of one team's entries (oldest first), and how many match in all."""
    cutoff = now - dt.timedelta(seconds=query.min_age_s) if query.min_age_s else None
    matching = [
        entry
        for entry in entries
        if (cutoff is None or entry.updated_at <= cutoff)
        and (query.group is None or entry.group == query.group)
        and (query.code is None or query.code in entry.codes)
    ]
    start = (query.page - 1) * query.size
    return matching[start : start + query.size], len(matching)


def age_s(updated_at: dt.datetime, now: dt.datetime) -> int:
    """Whole seconds since the record's last change (never negative: clocks of stages differ)."""
    return max(0, int((now - updated_at).total_seconds()))
