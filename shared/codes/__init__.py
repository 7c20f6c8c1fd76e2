"""The IVI code tables as data: what a code on a certificate means, and where that meaning comes from.

Each table is one JSON file beside this module: ``table`` (its name), ``title``, ``source`` (the
regulation or document the meanings come from), ``xsd_type`` (the IVI 2.0 schema's enumeration that
lists the codes allowed), ``elements`` (the IVI elements whose value is such a code), an optional
``note`` and ``codes`` (code → meaning). A code the schema allows but a table does not name has no
meaning here (``None``): a page then shows the code alone, never a guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class CodeTable:
    name: str
    title: str
    source: str
    xsd_type: str
    elements: tuple[str, ...]
    codes: Mapping[str, str]
    note: str = ""


def _load(path: Path) -> CodeTable:
    data = json.loads(path.read_text(encoding="utf-8"))
    codes = data["codes"]
    if not isinstance(codes, dict) or not all(isinstance(v, str) and v for v in codes.values()):
        raise ValueError(f"{path.name}: codes must map each code to its meaning")
    if data["table"] != path.stem:
        raise ValueError(f"{path.name}: table {data['table']!r} is not named after its file")
    return CodeTable(
        name=data["table"],
        title=data["title"],
        source=data["source"],
        xsd_type=data["xsd_type"],
        elements=tuple(data["elements"]),
        codes=MappingProxyType(dict(codes)),
        note=data.get("note", ""),
    )


@cache
def tables() -> Mapping[str, CodeTable]:
    """Every table, by name."""
    return MappingProxyType({t.name: t for t in map(_load, sorted(FOLDER.glob("*.json")))})


@cache
def _by_element() -> Mapping[str, CodeTable]:
    found: dict[str, CodeTable] = {}
    for table in tables().values():
        for element in table.elements:
            if element in found:
                raise ValueError(
                    f"element {element} is decoded by both {found[element].name} and {table.name}"
                )
            found[element] = table
    return MappingProxyType(found)


def meaning(table: str, code: str) -> str | None:
    """What ``code`` means in ``table`` ("vienna_country", "D" → "Germany"); None when the table does not say.

    An unknown table name is a KeyError: a mistake in the code, not in the data.
    """
    return tables()[table].codes.get(code.strip())


def table_of(element: str) -> CodeTable | None:
    """The table that decodes the values of an IVI element (its local name), if one does."""
    return _by_element().get(element)


def decoded(element: str, value: str) -> str:
    """A value of the IVI element ``element`` as a page shows it: with its meaning beside a code ("D — Germany").

    ``element`` may be a dotted path whose last step is the element, numbered or not
    ("CocDataGroup.EnergySource[2]"). A value no table names comes back as it is.
    """
    name = element.rsplit(".", 1)[-1].split("[", 1)[0]
    table = table_of(name)
    found = meaning(table.name, value) if table and value else None
    return f"{value} — {found}" if found else value
