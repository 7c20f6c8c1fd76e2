"""Import an existing IVI 2.0 document, as a homologation tool exports it, as approval and build record.

The approval gets the document's CocDataGroup without its per-vehicle elements
(``shared.ivi.PER_VEHICLE``); the build record gets those per-vehicle values under
the contract's plain names. Rendering the pair gives back the same certificate
content. An existing ds:Signature is ignored: a signature belongs to one document,
and the re-rendered document is signed anew.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from lxml import etree
from pydantic import ValidationError

from shared.contracts import Approval, ApprovalRef, BuildRecord, FittedTyre
from shared.ivi import FROM_APPROVAL_FIELDS, NAMESPACE, PER_VEHICLE, IviSchema, IviTreeError, without_paths
from shared.xml import XmlInputError, parse_bytes, validate

__all__ = ["IMPORTED_PLANT", "IviImportError", "import_document"]

IMPORTED_PLANT: Final = "imported"
_NS: Final = f"{{{NAMESPACE}}}"

# Where the approved actual-mass range is read, first present wins.
_MASS_MIN: Final = (
    "CocDataGroup/MassGroup/MassInRunningOrder",
    "CocDataGroup/MassGroup/MassInRunningOrderVariableMin",
)
_MASS_MAX: Final = (
    "CocDataGroup/AllowedParameterValuesMultistageGroup/AllowedActualMassMax",
    "CocDataGroup/AllowedParameterValuesMultistageGroup/AllowedActualMass",
    "CocDataGroup/MassGroup/TechnicallyPermissibleMaximumLadenMass",
)


class IviImportError(ValueError):
    """The document cannot be imported; the message names the element or path concerned."""


def import_document(xml: bytes, schema: IviSchema) -> tuple[Approval, BuildRecord]:
    """Approval master data and the build record of one IVI 2.0 document."""
    root = _parse(xml)
    doc = {name: _decoded(schema, root, name) for name in ("Header", "CocDataGroup")}
    _check_schema(root, schema)
    try:
        approval = _approval(doc)
        return approval, _build(doc, approval)
    except ValidationError as exc:
        raise IviImportError(f"not importable: {_first_error(exc)}") from exc


def _parse(xml: bytes) -> etree._Element:
    try:
        root = parse_bytes(xml)
    except XmlInputError as exc:
        raise IviImportError(str(exc)) from exc
    if root.tag != f"{_NS}InitialVehicleInformation":
        raise IviImportError(
            f"not an IVI 2.0 document: the root is {root.tag}, "
            f"expected InitialVehicleInformation in namespace {NAMESPACE}"
        )
    _refuse_hidden_nodes(root)
    return root


def _refuse_hidden_nodes(root: etree._Element) -> None:
    """Refuse comments and processing instructions inside values.

    A value split by a comment (``<ActualMass>1<!---->193</ActualMass>``) would
    be read only up to the comment, and the seal does not cover comments: a
    document that verifies could import with other values than it shows. Such a
    document is refused, never half-read. A comment between elements holds no
    value and is passed over.
    """
    for node in root.iter(etree.Comment, etree.ProcessingInstruction):
        parent = node.getparent()
        if parent is None or any(True for _ in parent.iterchildren(etree.Element)):
            continue  # between elements, not inside a value
        where = _path_of(parent)
        kind = "a comment" if isinstance(node, etree._Comment) else "a processing instruction"
        raise IviImportError(
            f"{where} holds {kind} inside its value; a value split by a comment or processing "
            "instruction would be read differently than it is displayed, so the document is refused"
        )


def _path_of(element: etree._Element) -> str:
    names = [etree.QName(node).localname for node in [element, *element.iterancestors()]]
    return "/".join(reversed(names[:-1])) or names[-1]


def _decoded(schema: IviSchema, root: etree._Element, name: str) -> dict[str, Any]:
    """The tree of Header or CocDataGroup; problems are named by their IVI path."""
    element = root.find(f"{_NS}{name}")
    if element is None:
        raise IviImportError(f"missing element InitialVehicleInformation/{name}")
    try:
        tree = schema.decode(element)
    except IviTreeError as exc:
        raise IviImportError(f"not importable: {exc}") from exc
    problems = [
        f"{problem.path}: {problem.message}" for problem in schema.check_tree(tree, name, per_vehicle=())
    ]
    if problems:
        raise IviImportError(_summary(problems))
    return tree


def _check_schema(root: etree._Element, schema: IviSchema) -> None:
    # The rest of the schema, as published but with the signature optional: an export
    # may be unsigned, and an existing signature is ignored anyway.
    problems = validate(schema.unsigned_validator, root)
    if problems:
        raise IviImportError(_summary([problem.replace(_NS, "") for problem in problems]))


def _summary(problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"not a valid IVI 2.0 document: {problems[0]}{more}"


def _approval(doc: Mapping[str, Any]) -> Approval:
    vin = _text(doc, "CocDataGroup/VehicleIdentificationNumber")
    return Approval(
        number=_text(doc, "CocDataGroup/TypeApprovalNumber"),
        issue_date=_date(doc, "CocDataGroup/TypeApprovalIssueDate"),
        designated_country=_text(doc, "Header/DesignatedTypeApprovalCountry"),
        type=_text(doc, "CocDataGroup/Type"),
        variant=_text(doc, "CocDataGroup/Variant"),
        version=_text(doc, "CocDataGroup/Version"),
        category=_text(doc, "CocDataGroup/VehicleCategory"),
        wmis=(vin[:3],),  # ISO 3779: VIN positions 1-3 are the world manufacturer identifier
        actual_mass_min_kg=_first_mass(doc, _MASS_MIN),
        actual_mass_max_kg=_first_mass(doc, _MASS_MAX),
        certificate=without_paths(doc["CocDataGroup"], PER_VEHICLE),
    )


def _build(doc: Mapping[str, Any], approval: Approval) -> BuildRecord:
    actual_mass = _optional(doc, "CocDataGroup/MassGroup/ActualMass")
    certificate = doc["CocDataGroup"]
    return BuildRecord(
        vin=_text(doc, "CocDataGroup/VehicleIdentificationNumber"),
        build_id=f"import-{_text(doc, 'Header/IviReferenceId')}",
        revision=1,
        manufactured_on=_optional_date(doc, "CocDataGroup/DateManufactureVehicle"),
        plant=IMPORTED_PLANT,
        vehicle_group=approval.type,
        approval=ApprovalRef(
            number=approval.number, type=approval.type, variant=approval.variant, version=approval.version
        ),
        intended_country=_optional(doc, "Header/IntendedCountryRegistration"),
        actual_mass_kg=None
        if actual_mass is None
        else _mass(actual_mass, "CocDataGroup/MassGroup/ActualMass"),
        colours=tuple(group["Colour"] for group in _groups(certificate, "ColourTable", "ColourGroup")),
        tyres=_fitted_tyres(certificate),
        released_at=_released_at(_text(doc, "Header/IviVersionDateTime")),
        signature_date=_signature_date(doc),
    )


def _signature_date(doc: Mapping[str, Any]) -> dt.date | None:
    """The document's own SignatureDate, kept: it need not be the date of IviVersionDateTime."""
    groups = _groups(doc["CocDataGroup"], "SigningAuthorityTable", "SigningAuthorityGroup")
    dates = [group["SignatureDate"] for group in groups if isinstance(group.get("SignatureDate"), str)]
    return dt.date.fromisoformat(dates[0][:10]) if dates else None


def _fitted_tyres(tree: Mapping[str, Any]) -> tuple[FittedTyre, ...]:
    """The options whose TyreFittedProductionIndicator is Y, per axle (EUCARIS set-up manual)."""
    fitted = []
    for axle in _groups(tree, "AxleTable", "AxleGroup"):
        for tyre in _groups(axle, "TyreAxleTable", "TyreAxleGroup"):
            if tyre.get("TyreFittedProductionIndicator") == "Y":
                fitted.append(FittedTyre(axle=int(axle["AxleNumber"]), option=int(tyre["TyreNumber"])))
    return tuple(fitted)


def _released_at(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise IviImportError(f"Header/IviVersionDateTime {text} is not a date-time this tool reads") from None
    if when.tzinfo is None:
        # Date-times carry their offset (guidelines 1.14); a guess would shift the signature date.
        raise IviImportError(f"Header/IviVersionDateTime {text} has no UTC offset")
    return when


# --- reading values -----------------------------------------------------------------------------


def _optional(doc: Mapping[str, Any], path: str) -> str | None:
    node: Any = doc
    for step in path.split("/"):
        if not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node if isinstance(node, str) and node.strip() else None


def _text(doc: Mapping[str, Any], path: str) -> str:
    value = _optional(doc, path)
    if value is None:
        raise IviImportError(f"missing element {path}")
    return value


def _date(doc: Mapping[str, Any], path: str) -> dt.date:
    # xs:date may carry a time zone; the calendar date is what the certificate states.
    return dt.date.fromisoformat(_text(doc, path)[:10])


def _optional_date(doc: Mapping[str, Any], path: str) -> dt.date | None:
    return None if _optional(doc, path) is None else _date(doc, path)


def _groups(tree: Mapping[str, Any], table: str, group: str) -> list[Mapping[str, Any]]:
    items = tree.get(table, {}).get(group, [])
    return [item for item in items if isinstance(item, Mapping)]


def _first_mass(doc: Mapping[str, Any], paths: tuple[str, ...]) -> int | None:
    for path in paths:
        value = _optional(doc, path)
        if value is not None:
            return _mass(value, path)
    return None


def _mass(text: str, path: str) -> int:
    try:
        return int(Decimal(text))
    except InvalidOperation:
        raise IviImportError(f"{path} is not a mass in kg: {text!r}") from None


# Contract field -> the IVI element it was read from, to name the element in an error.
_SOURCE: Final[Mapping[str, str]] = {
    **{field: f"CocDataGroup/{element}" for element, field in FROM_APPROVAL_FIELDS.items()},
    "designated_country": "Header/DesignatedTypeApprovalCountry",
    "wmis": "CocDataGroup/VehicleIdentificationNumber",
    "vin": "CocDataGroup/VehicleIdentificationNumber",
    "build_id": "Header/IviReferenceId",
    "vehicle_group": "CocDataGroup/Type",
    "intended_country": "Header/IntendedCountryRegistration",
    "colours": "CocDataGroup/ColourTable",
    "tyres": "CocDataGroup/AxleTable",
    "actual_mass_min_kg": "CocDataGroup/MassGroup",
    "actual_mass_max_kg": "CocDataGroup/MassGroup",
}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    source = f" ({_SOURCE[field]})" if field in _SOURCE else ""
    return f"{exc.title}.{field}{source}: {error['msg']}" if field else f"{exc.title}: {error['msg']}"
