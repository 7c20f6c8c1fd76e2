"""The upload template's columns: the Approval's own fields, then the IVI paths of its certificate data.

A column is named after the IVI 2.0 element it fills where there is one
(``CocDataGroup/TypeApprovalNumber``, ``Header/DesignatedTypeApprovalCountry``,
``CocDataGroup/MassGroup/MassInRunningOrder``), else after the contract's field
(``wmis``, ``actual_mass_min_kg``). A repeated element carries its item number:
``CocDataGroup/AxleTable/AxleGroup[2]/AxleNumber``. Both lists come from the
contract (``Approval.model_fields``) and the schema (``shared.ivi``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from shared.contracts import Approval
from shared.ivi import FROM_APPROVAL_FIELDS, NAMESPACE, PER_VEHICLE, ElementDecl, IviSchema, SimpleType

CERTIFICATE: Final = "CocDataGroup"
# Fields that are no column: the contract's version, the tree (its leaves are columns), the provenance.
NOT_COLUMNS: Final = frozenset({"schema_version", "certificate", "source"})
_IVI_OF_FIELD: Final[Mapping[str, str]] = {
    **{field: f"{CERTIFICATE}/{element}" for element, field in FROM_APPROVAL_FIELDS.items()},
    "designated_country": "Header/DesignatedTypeApprovalCountry",
}
FIELD_COLUMNS: Final[Mapping[str, str]] = {
    name: _IVI_OF_FIELD.get(name, name) for name in Approval.model_fields if name not in NOT_COLUMNS
}
COLUMN_FIELDS: Final[Mapping[str, str]] = {column: name for name, column in FIELD_COLUMNS.items()}
LIST_FIELDS: Final = frozenset({"wmis"})  # several values in one cell, separated by spaces or commas


@dataclass(frozen=True)
class Column:
    """One column of the template: its name, whether a row must fill it, and what goes in it."""

    name: str
    required: bool
    meaning: str


def field_columns() -> list[Column]:
    """The Approval's own fields as columns, described by the contract."""
    found = []
    for name, column in FIELD_COLUMNS.items():
        info = Approval.model_fields[name]
        extra = " (several: separate them by spaces)" if name in LIST_FIELDS else ""
        found.append(Column(column, info.is_required(), f"{info.description or name}{extra}"))
    return found


@lru_cache(maxsize=4)
def template_columns(schema: IviSchema) -> tuple[Column, ...]:
    """Every column of the template: the fields, then each leaf of CocDataGroup an approval may fix.

    Schema order; a repeated element at its first item; the per-vehicle elements
    (``shared.ivi.PER_VEHICLE``) are no column, as they come from the build record.
    """
    root = schema.declaration(CERTIFICATE)
    leaves = [
        Column(path, required, meaning) for path, required, meaning in _leaves(schema, root, "", "", True)
    ]
    return (*field_columns(), *leaves)


def _leaves(
    schema: IviSchema, decl: ElementDecl, path: str, rel: str, required: bool
) -> Iterator[tuple[str, bool, str]]:
    for child in schema.complex_types[decl.type_name].children:
        child_rel = f"{rel}/{child.name}".lstrip("/")
        if child.namespace != NAMESPACE or child_rel in PER_VEHICLE:
            continue
        child_path = f"{path or CERTIFICATE}/{child.name}" + ("[1]" if child.repeated else "")
        child_required = required and child.required
        if child.is_complex:
            yield from _leaves(schema, child, child_path, child_rel, child_required)
        else:
            yield child_path, child_required, describe(schema.simple_type(child))


def describe(simple: SimpleType) -> str:
    """What a value of an IVI simple type looks like, in a few words."""
    if simple.enumeration:
        codes = sorted(simple.enumeration)
        shown = ", ".join(codes[:12]) + (f" … ({len(codes)} codes)" if len(codes) > 12 else "")
        return f"{simple.name}: one of {shown}"
    if simple.primitive == "string":
        low, high = simple.min_length, simple.max_length
        size = f", {low or 0} to {high} characters" if high is not None else ""
        return f"{simple.name}: text{size}"
    kinds = {"integer": "a whole number", "decimal": "a decimal number", "date": "a date YYYY-MM-DD"}
    kind = kinds.get(simple.primitive, simple.primitive)
    bounds = ""
    if simple.minimum is not None or simple.maximum is not None:
        bounds = f" from {simple.minimum if simple.minimum is not None else '…'}"
        bounds += f" to {simple.maximum if simple.maximum is not None else '…'}"
    return f"{simple.name}: {kind}{bounds}"


# -- an approval as cells, and back ----------------------------------------------------------------


def cells(approval: Approval) -> dict[str, str]:
    """An approval as one row: column → text; empty fields and absent elements are left out."""
    found = {column: cell_text(getattr(approval, name)) for name, column in FIELD_COLUMNS.items()}
    found.update(tree_cells(approval.certificate, CERTIFICATE))
    return {column: text for column, text in found.items() if text != ""}


def tree_cells(tree: Any, path: str) -> Iterator[tuple[str, str]]:
    """The leaves of a certificate tree by their IVI path, list items numbered from 1."""
    if isinstance(tree, Mapping):
        for name, value in tree.items():
            yield from tree_cells(value, f"{path}/{name}")
    elif isinstance(tree, list | tuple):
        for number, item in enumerate(tree, start=1):
            yield from tree_cells(item, f"{path}[{number}]")
    elif tree is not None:
        yield path, str(tree)


def cell_text(value: Any) -> str:
    """A field's value as a cell shows it."""
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return " ".join(str(item) for item in value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
