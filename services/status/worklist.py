"""Status's pure list logic: the unsettled records a process keeps in view, and one page of them.

A team's worklist is the records waiting for a person (blocked, needs review,
held) with findings that team owns; a state list is the records in one state
that is not archived (the board's counts link to them). Both are oldest first:
the order a team works through them, and one that stays put while the team works
(a record that changes goes to the end). Ties are broken by VIN.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.status.fold import NO_COUNTRY, OPEN_STATES, StatusRecord
from shared.contracts.events import State
from shared.contracts.findings import Owner

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
WAITING = frozenset(state.value for state in OPEN_STATES)


@dataclass(frozen=True)
class ListQuery:
    """One page of a team's worklist (``owner``) or of a state list (``state``), with the filters set."""

    owner: Owner | None = None
    state: State | None = None
    group: str | None = None
    code: str | None = None
    min_age_s: int | None = None
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    record_type: str | None = None
    country: str | None = None  # NO_COUNTRY ("none"): records without an intended country
    after: Cursor | None = None  # the page after this entry instead of ``page``

    def __post_init__(self) -> None:
        if (self.owner is None) == (self.state is None):
            raise ValueError("a list is either a team's worklist or a state's records")


class BadCursor(ValueError):
    """An ``after`` that is not a cursor a list gave."""


@dataclass(frozen=True)
class Cursor:
    """Where a page of a list ends: the last entry's time and VIN, opaque to callers (``next``, ``after``)."""

    updated_at: dt.datetime
    vin: str

    def token(self) -> str:
        raw = f"{self.updated_at.astimezone(dt.UTC).isoformat()}|{self.vin}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            stamp, _, vin = raw.partition("|")
            at = dt.datetime.fromisoformat(stamp)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise BadCursor("after: not a cursor this list gave (use the next of a page)") from None
        if not vin or at.tzinfo is None:
            raise BadCursor("after: not a cursor this list gave (use the next of a page)")
        return cls(at, vin)


def matches(entry: Entry, query: ListQuery) -> bool:
    """Whether the entry passes the query's filters (group, code, record type, country)."""
    return (
        (query.group is None or entry.group == query.group)
        and (query.code is None or entry.has_code(query.code, query.owner))
        and (query.record_type is None or entry.record_type == query.record_type)
        and (query.country is None or (entry.country or NO_COUNTRY) == query.country)
    )


@dataclass(frozen=True, order=True)
class Entry:
    """What the lists need to select and order an unsettled record."""

    updated_at: dt.datetime
    vin: str
    state: str = field(compare=False)
    group: str | None = field(compare=False)
    keys: frozenset[str] = field(compare=False)  # ``owner|code`` per finding
    record_type: str | None = field(default=None, compare=False)
    country: str | None = field(default=None, compare=False)

    @property
    def waiting(self) -> bool:
        return self.state in WAITING

    def owners(self) -> set[str]:
        return {key.partition("|")[0] for key in self.keys}

    def has_code(self, code: str, owner: Owner | None) -> bool:
        return any(
            key.partition("|")[2] == code and (owner is None or key.partition("|")[0] == owner.value)
            for key in self.keys
        )


def open_keys(record: StatusRecord) -> list[str]:
    """``owner|code`` of each finding of the record, as the unsettled collection keeps them."""
    return [f"{finding.owner.value}|{finding.code}" for finding in record.findings]


class View:
    """The unsettled records held in a process: per team its waiting records, per state its records.

    Each list is kept sorted (oldest first) as entries come and go, so a page is
    a filter over one list, and a change costs a search and a move, not a sort.
    """

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self.entries: dict[str, Entry] = {}
        self.by_owner: dict[str, list[Entry]] = {}
        self.by_state: dict[str, list[Entry]] = {}
        for entry in sorted(entries):
            self.entries[entry.vin] = entry
            self.by_state.setdefault(entry.state, []).append(entry)
            if entry.waiting:
                for owner in entry.owners():
                    self.by_owner.setdefault(owner, []).append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, entry: Entry) -> None:
        """Add the entry, or replace the VIN's entry by it."""
        self.drop(entry.vin)
        self.entries[entry.vin] = entry
        for target in self._lists(entry, create=True):
            bisect.insort(target, entry)

    def drop(self, vin: str) -> None:
        """Forget the VIN (it was archived, or is about to be replaced)."""
        entry = self.entries.pop(vin, None)
        if entry is None:
            return
        for target in self._lists(entry, create=False):
            at = bisect.bisect_left(target, entry)
            if at < len(target) and target[at] == entry:
                del target[at]

    def _lists(self, entry: Entry, create: bool) -> list[list[Entry]]:
        def of(table: dict[str, list[Entry]], key: str) -> list[Entry] | None:
            return table.setdefault(key, []) if create else table.get(key)

        found = [of(self.by_state, entry.state)]
        if entry.waiting:
            found += [of(self.by_owner, owner) for owner in entry.owners()]
        return [target for target in found if target is not None]

    def select(self, query: ListQuery, now: dt.datetime) -> tuple[list[Entry], int, Cursor | None]:
        """The page ``query`` asks for (oldest first), how many match in all, and the cursor of the next page."""
        if query.owner is not None:
            source = self.by_owner.get(query.owner.value, [])
        else:
            assert query.state is not None
            source = self.by_state.get(query.state.value, [])
        cutoff = now - dt.timedelta(seconds=query.min_age_s) if query.min_age_s else None
        if cutoff is not None:
            source = source[: bisect.bisect_right(source, _probe(cutoff, "\uffff"))]
        filtered = (query.group, query.code, query.record_type, query.country) != (None,) * 4
        matching = [entry for entry in source if matches(entry, query)] if filtered else source
        if query.after is None:
            start = (query.page - 1) * query.size
        else:
            start = bisect.bisect_right(matching, _probe(query.after.updated_at, query.after.vin))
        chosen = matching[start : start + query.size]
        more = start + query.size < len(matching)
        return chosen, len(matching), Cursor(chosen[-1].updated_at, chosen[-1].vin) if more else None


def _probe(updated_at: dt.datetime, vin: str) -> Entry:
    """An entry that sorts where (updated_at, vin) would: for searches."""
    return Entry(updated_at, vin, "", None, frozenset())


def age_s(updated_at: dt.datetime, now: dt.datetime) -> int:
    """Whole seconds since the record's last change (never negative: clocks of stages differ)."""
    return max(0, int((now - updated_at).total_seconds()))
