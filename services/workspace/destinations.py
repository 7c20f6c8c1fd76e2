"""Readiness by destination: per intended registration country, its vehicles per state and its deliveries.

Status counts both while it folds the status events (``/v1/readiness``:
``by_country`` and ``deliveries``, "none" for vehicles whose build named no
country). A destination is shown by its name from the code tables where they
know the code (``shared.codes``), else by its code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

NO_COUNTRY = "none"  # status's key for vehicles without an intended country


@dataclass(frozen=True)
class Destination:
    """One row of the board's destinations: vehicles per state, certificates per delivery state."""

    code: str
    name: str
    counts: dict[str, int]
    deliveries: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _lookup() -> Callable[[str, str], str | None] | None:
    """``shared.codes.meaning`` where the code tables have it (None before they do)."""
    try:
        module = importlib.import_module("shared.codes")
    except ImportError:
        return None
    found = getattr(module, "meaning", None)
    return found if callable(found) else None


def country_name(code: str) -> str:
    """The country's name as people read it: from the code tables, else its code."""
    if code == NO_COUNTRY:
        return "No country stated"
    meaning = _lookup()
    if meaning is not None:
        for table in ("country", "vienna_country"):
            try:
                name = meaning(table, code)
            except (KeyError, LookupError, ValueError, OSError):
                continue
            if name:
                return f"{name} ({code})"
    return code


def destinations_of(
    readiness: Mapping[str, Any], states: list[str], delivery_states: list[str]
) -> list[Destination]:
    """The board's destination rows from status's readiness: by vehicles, most first; "none" last."""
    by_country: Mapping[str, Mapping[str, int]] = readiness.get("by_country") or {}
    deliveries: Mapping[str, Mapping[str, int]] = readiness.get("deliveries") or {}
    rows = [
        Destination(
            code=str(code),
            name=country_name(str(code)),
            counts={s: int((by_country.get(code) or {}).get(s, 0)) for s in states},
            deliveries={s: int((deliveries.get(code) or {}).get(s, 0)) for s in delivery_states},
        )
        for code in sorted(set(by_country) | set(deliveries))
    ]
    return sorted(rows, key=lambda row: (row.code == NO_COUNTRY, -row.total, row.code))


def live_cells(readiness: Mapping[str, Any]) -> dict[str, int]:
    """The destinations' counts by the board's cells (``country|<code>|<state>``, ``delivery|<code>|<state>``),
    and the record types' (``rtype|<C, I, V or none>|<state>``).

    What a live update of an open board carries for them (counts above zero): the page's script sets
    each cell it has, zeroes those the update no longer names, and loads the page again when a
    destination or record type it has no row for appears.
    """
    cells: dict[str, int] = {}
    for kind, table in (("country", "by_country"), ("delivery", "deliveries"), ("rtype", "by_record_type")):
        for code, counts in (readiness.get(table) or {}).items():
            cells.update({f"{kind}|{code}|{state}": int(n) for state, n in (counts or {}).items()})
    return cells
