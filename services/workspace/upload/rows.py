"""One uploaded row (column → text) or JSON object as an Approval, or the errors naming its columns and rules.

Every row is checked against the contract (``Approval``) and its certificate
tree against the IVI 2.0 schema (``IviSchema.check_tree``); an error names the
row, the column (an IVI path or a field's column) and the rule it breaks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from services.workspace.upload.columns import CERTIFICATE, COLUMN_FIELDS, FIELD_COLUMNS, LIST_FIELDS
from shared.contracts import Approval
from shared.contracts.base import reason_of
from shared.ivi import ElementDecl, IviSchema

# The rules an error can name.
TEMPLATE: Final = "template column"
IVI_PATH: Final = "IVI path"
CONTRACT: Final = "approval contract"
SCHEMA: Final = "IVI 2.0 schema"
_STEP = re.compile(r"([A-Za-z0-9]+)(?:\[(\d{1,4})\])?")


@dataclass(frozen=True)
class RowError:
    """Why one row cannot be published: where (row, column) and which rule."""

    row: int  # the spreadsheet's row number (the header is row 1), the JSON item's number, 0: the file
    column: str
    rule: str
    message: str


class _Tree:
    """A certificate tree built cell by cell; repeated elements keep their items by number until done."""

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}

    def place(self, steps: list[tuple[str, int | None]], value: str) -> None:
        node = self.root
        for name, number in steps[:-1]:
            node = node.setdefault(name, {}).setdefault(number, {}) if number else node.setdefault(name, {})
        name, number = steps[-1]
        if number:
            node.setdefault(name, {})[number] = value
        else:
            node[name] = value

    def done(self, repeated: set[str]) -> tuple[dict[str, Any], list[str]]:
        """The tree with numbered items as lists; the gaps found (an item given without the ones before)."""
        gaps: list[str] = []
        return _lists(self.root, CERTIFICATE, repeated, gaps), gaps


def _lists(node: dict[str, Any], path: str, repeated: set[str], gaps: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in node.items():
        here = f"{path}/{name}"
        if here in repeated:
            numbers = sorted(value)
            missing = [n for n in range(1, numbers[-1] + 1) if n not in value]
            gaps.extend(f"{here}[{n}]" for n in missing)
            out[name] = [
                _lists(value[n], f"{here}", repeated, gaps) if isinstance(value[n], dict) else value[n]
                for n in numbers
            ]
        else:
            out[name] = _lists(value, here, repeated, gaps) if isinstance(value, dict) else value
    return out


def approval_of_row(
    row: int, values: Mapping[str, str], schema: IviSchema
) -> tuple[Approval | None, list[RowError]]:
    """The approval of one spreadsheet row (empty cells left out), or the errors naming its columns."""
    fields: dict[str, Any] = {}
    tree, repeated, errors = _Tree(), set[str](), list[RowError]()
    for column, text in values.items():
        if column in COLUMN_FIELDS:
            name = COLUMN_FIELDS[column]
            fields[name] = text.replace(",", " ").split() if name in LIST_FIELDS else text
        elif column.startswith(f"{CERTIFICATE}/"):
            steps, problem = _steps(column, schema, repeated)
            if problem is not None:
                errors.append(RowError(row, column, IVI_PATH, problem))
            else:
                tree.place(steps, text)
        else:
            errors.append(
                RowError(row, column, TEMPLATE, "not a column of the template (see its Columns sheet)")
            )
    certificate, gaps = tree.done(repeated)
    errors += [
        RowError(row, gap, IVI_PATH, "an item is numbered past this one, which is empty") for gap in gaps
    ]
    if errors:
        return None, errors
    return checked(row, {**fields, "certificate": certificate}, schema)


def checked(row: int, data: Mapping[str, Any], schema: IviSchema) -> tuple[Approval | None, list[RowError]]:
    """The approval of ``data`` (the contract's fields), checked against the contract and the schema."""
    try:
        approval = Approval.model_validate({k: v for k, v in data.items() if k != "source"})
    except ValidationError as exc:
        return None, [RowError(row, _column_of(err["loc"]), CONTRACT, reason_of(err)) for err in exc.errors()]
    problems = schema.check_tree(approval.certificate)
    errors = [RowError(row, problem.path, SCHEMA, problem.message) for problem in problems]
    return (None, errors) if errors else (approval, [])


def _column_of(loc: tuple[int | str, ...]) -> str:
    """The column of a contract error's location: a field's column, or the IVI path inside the tree."""
    if not loc:
        return FIELD_COLUMNS["actual_mass_min_kg"]  # the one rule over two fields: the mass range's order
    name = str(loc[0])
    if name == "certificate":
        rest = "".join(f"[{step + 1}]" if isinstance(step, int) else f"/{step}" for step in loc[1:])
        return f"{CERTIFICATE}{rest}"
    return FIELD_COLUMNS.get(name, name)


def _steps(
    column: str, schema: IviSchema, repeated: set[str]
) -> tuple[list[tuple[str, int | None]], str | None]:
    """The column's steps below CocDataGroup (name, item number), or why it names no element of the schema."""
    decl = schema.declaration(CERTIFICATE)
    steps: list[tuple[str, int | None]] = []
    path = CERTIFICATE
    for text in column.split("/")[1:]:
        match = _STEP.fullmatch(text)
        if match is None:
            return [], f"{text!r} is not an element name with an optional item number such as AxleGroup[2]"
        name, number = match.group(1), int(match.group(2)) if match.group(2) else None
        child = _child(schema, decl, name)
        if child is None:
            return [], f"{name} is not an element of {decl.name} in IVI 2.0"
        if number is not None and not child.repeated:
            return [], f"{name} occurs once in {decl.name}: no item number"
        if child.repeated:
            number = number or 1
            if number < 1:
                return [], f"{name}[0]: items are numbered from 1"
            repeated.add(f"{path}/{name}")
        path, decl = f"{path}/{name}", child
        steps.append((name, number))
    if decl.is_complex:
        return [], f"{decl.name} is a group: name one of its elements"
    return steps, None


def _child(schema: IviSchema, decl: ElementDecl, name: str) -> ElementDecl | None:
    ctype = schema.complex_types.get(decl.type_name) if decl.is_complex else None
    return ctype.child(name) if ctype is not None else None
