"""Render: lay a build record onto its approval's certificate and write the unsigned IVI 2.0 document.

Pure and deterministic (design, "Identity and determinism"): the reference id is
derived from the record id, the version time and the signature date come from the
record, never from the clock, so rendering one revision twice gives the same bytes
and every later stage can deduplicate by hash.

Speed: the part of a document an approval fixes is the same for every vehicle
built to it, so it is encoded once into a template document with a placeholder at
each per-vehicle element (``shared.ivi.PER_VEHICLE``) and at the header values of
the record. A render fills the placeholders in place, validates the lxml tree it
holds (no re-parse), serialises it once and puts back what it took out; templates
are per thread, so no other render sees one half filled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, cast

from lxml import etree

from shared.contracts import Approval, BuildRecord
from shared.ivi import (
    FROM_APPROVAL_FIELDS,
    FROM_PREVIOUS_STAGE,
    NAMESPACE,
    NOT_ISSUED,
    IviSchema,
    IviTreeError,
)

__all__ = ["RenderError", "check", "document_time", "reference_id", "render", "signature_date"]

XSD_VERSION: Final = "2.0"  # IviVersionNumberXsd must be exactly 2.0 (change overview, mandatory fields)
_NS: Final = f"{{{NAMESPACE}}}"
_ROOT: Final = f"{_NS}InitialVehicleInformation"
_SLOT: Final = "\ue000"  # private-use character: marks a placeholder in a template, never in output
_TEMPLATES_KEPT: Final = 256


class RenderError(Exception):
    """Base error of the render service; ``messages`` holds the schema's own words when there are any."""

    def __init__(self, message: str, messages: Sequence[str] = ()) -> None:
        detail = "; ".join(messages[:3]) + (f" (+{len(messages) - 3} more)" if len(messages) > 3 else "")
        super().__init__(f"{message}: {detail}" if detail else message)
        self.messages = tuple(messages)


def render(
    build: BuildRecord,
    approval: Approval,
    *,
    version_number: int,
    schema: IviSchema,
    released_at: dt.datetime | None = None,
) -> bytes:
    """The unsigned IVI 2.0 document of ``build``, checked against the schema (signature optional).

    ``version_number`` is the IviVersionNumber assigned to this record id (1, then +1
    per corrected re-issue; guidelines 1.7, 1.12). ``released_at``, when given, takes
    the place of ``build.released_at`` as the document time.
    """
    _check_same_approval(build, approval)
    values = _Values.of(build, version_number, document_time(build, released_at))
    template = _templates().get(approval, schema)
    undo: _Undo = []
    try:
        for slot in template.slots:
            _FILL[slot.kind](slot, values, undo)
        problems = check(template.root, schema)
        if problems:
            raise RenderError(f"rendered document of {build.record_id} is not valid IVI 2.0", problems)
        return etree.tostring(template.root, xml_declaration=True, encoding="UTF-8")
    finally:
        for step in reversed(undo):  # the template goes back to what it was, whatever happened
            step()


def check(doc: etree._Element, schema: IviSchema) -> list[str]:
    """Schema messages for an unsigned document: the official schema with only the signature optional.

    A tree built in memory has no line numbers, so each message starts with the IVI
    path of the element concerned, e.g. ``CocDataGroup/AxleTable/AxleGroup[2]/AxleTrack``.
    """
    validator = schema.unsigned_validator
    if validator.validate(doc):
        return []
    errors = cast("Iterable[Any]", validator.error_log)  # lxml-stubs do not type the log
    return [f"{_ivi_path(doc, error.path)}: {error.message.replace(_NS, '')}" for error in errors]


def reference_id(record_id: str) -> str:
    """IviReferenceId of a record: a UUID derived from ``VIN:revision``.

    The schema's IviReferenceId pattern asks for a version 4 UUID; the bits come from
    SHA-256 of the record id instead of a random source, with the version and variant
    bits set as RFC 9562 prescribes, so a redelivered record gets the same id and a
    correction (a new revision) a new one (guidelines 1.7).
    """
    digest = hashlib.sha256(f"ivi-reference:{record_id}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def document_time(build: BuildRecord, released_at: dt.datetime | None = None) -> dt.datetime:
    """IviVersionDateTime: the release time given, else the record's, else noon UTC on the build date."""
    when = released_at or build.released_at
    if when is None:
        if build.manufactured_on is None:
            raise RenderError(f"{build.record_id} has neither a release time nor a date of manufacture")
        return dt.datetime.combine(build.manufactured_on, dt.time(12), tzinfo=dt.UTC)
    if when.tzinfo is None or when.utcoffset() is None:
        raise RenderError(f"release time {when.isoformat()} of {build.record_id} has no UTC offset")
    return when


def signature_date(when: dt.datetime) -> str:
    """SignatureDate: the calendar date of the document time, in its own offset."""
    return when.date().isoformat()


def _ivi_path(doc: etree._Element, xpath: str) -> str:
    """``CocDataGroup/AxleTable/AxleGroup[2]/AxleTrack`` for the XPath libxml2 reports."""
    found = doc.xpath(xpath) if xpath else []
    if not isinstance(found, list) or not found or not isinstance(found[0], etree._Element):
        return xpath or "document"
    steps = []
    element: etree._Element | None = found[0]
    while element is not None and element.getparent() is not None:
        steps.append(_step(element))
        element = element.getparent()
    return "/".join(reversed(steps)) or "InitialVehicleInformation"


def _step(element: etree._Element) -> str:
    name = str(element.tag).replace(_NS, "")
    parent = element.getparent()
    same = [] if parent is None else parent.findall(element.tag)
    return f"{name}[{same.index(element) + 1}]" if len(same) > 1 else name


def _format_datetime(when: dt.datetime) -> str:
    # Date-times with offset and milliseconds, 2015-03-17T09:55:21.351+01:00 (guidelines 1.14).
    return when.isoformat(timespec="milliseconds")


def _check_same_approval(build: BuildRecord, approval: Approval) -> None:
    if build.approval.key != approval.key:
        raise RenderError(
            f"{build.record_id} was built to {build.approval.key}, but approval {approval.key} was given"
        )


# --- per-vehicle values -------------------------------------------------------------------------


@dataclass(slots=True)
class _Values:
    """The values of one document that are not the approval's, as the text they take in it."""

    reference_id: str
    version_number: str
    version_time: str
    intended_country: str | None
    vin: str
    manufactured_on: str | None
    colours: tuple[str, ...]
    actual_mass: str | None
    signature_date: str
    fitted: frozenset[tuple[int, int]]
    previous: Mapping[str, str]  # PreviousStage attribute -> value; empty without a previous stage

    @classmethod
    def of(cls, build: BuildRecord, version_number: int, when: dt.datetime) -> _Values:
        return cls(
            reference_id=reference_id(build.record_id),
            version_number=str(version_number),
            version_time=_format_datetime(when),
            intended_country=build.intended_country or None,
            vin=build.vin,
            manufactured_on=build.manufactured_on.isoformat() if build.manufactured_on else None,
            colours=build.colours,
            actual_mass=None if build.actual_mass_kg is None else str(build.actual_mass_kg),
            signature_date=build.signature_date.isoformat() if build.signature_date else signature_date(when),
            fitted=frozenset((tyre.axle, tyre.option) for tyre in build.tyres),
            previous={}
            if build.previous_stage is None
            else {name: getattr(build.previous_stage, name) for name in FROM_PREVIOUS_STAGE.values()},
        )


@dataclass(frozen=True, slots=True)
class _Slot:
    """A placeholder element of a template and what fills it."""

    element: etree._Element
    kind: str
    axle: int | None = None
    tyre: int | None = None


_Undo = list[Callable[[], None]]
_Fill = Callable[[_Slot, _Values, _Undo], None]


def _fill_text(value: Callable[[_Values], str | None]) -> _Fill:
    """Set the slot's text; a value that is None drops the (optional) element."""

    def fill(slot: _Slot, values: _Values, undo: _Undo) -> None:
        text = value(values)
        if text is None:
            _remove(slot.element, undo)
        else:
            slot.element.text = text

    return fill


def _fill_tyre(slot: _Slot, values: _Values, undo: _Undo) -> None:
    # Y marks the tyre fitted in production, N every other approved option (EUCARIS set-up
    # manual). A build that names no tyres gets no indicator: the validation reports it.
    if not values.fitted:
        _remove(slot.element, undo)
    else:
        slot.element.text = "Y" if (slot.axle, slot.tyre) in values.fitted else "N"


def _fill_colours(slot: _Slot, values: _Values, undo: _Undo) -> None:
    # The slot is the first ColourGroup/Colour; the table gets one group per colour.
    colour, group = slot.element, slot.element.getparent()
    table = None if group is None else group.getparent()
    if group is None or table is None:
        raise RenderError("template has a colour slot outside a ColourTable")
    if not values.colours:
        _remove(table, undo)
        return
    colour.text = values.colours[0]
    for text in values.colours[1:]:
        extra = etree.SubElement(table, group.tag)
        etree.SubElement(extra, colour.tag).text = text
        undo.append(partial(table.remove, extra))


def _previous(name: str, values: _Values) -> str | None:
    return values.previous.get(name)


def _remove(element: etree._Element, undo: _Undo) -> None:
    """Take out an unfilled optional element, and its group when that leaves the group empty."""
    parent = element.getparent()
    if parent is None:
        return
    undo.append(partial(parent.insert, parent.index(element), element))
    parent.remove(element)
    if len(parent) == 0 and parent.getparent() is not None:
        _remove(parent, undo)


_FILL: Final[Mapping[str, _Fill]] = {
    "reference_id": _fill_text(lambda values: values.reference_id),
    "version_number": _fill_text(lambda values: values.version_number),
    "version_time": _fill_text(lambda values: values.version_time),
    "intended_country": _fill_text(lambda values: values.intended_country),
    "vin": _fill_text(lambda values: values.vin),
    "manufactured_on": _fill_text(lambda values: values.manufactured_on),
    "signature_date": _fill_text(lambda values: values.signature_date),
    "actual_mass": _fill_text(lambda values: values.actual_mass),
    "tyre": _fill_tyre,
    "colours": _fill_colours,
    # The previous stage's approval number, type, variant and version (shared.ivi.FROM_PREVIOUS_STAGE).
    **{f"previous_{name}": _fill_text(partial(_previous, name)) for name in FROM_PREVIOUS_STAGE.values()},
}


# --- templates ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Template:
    root: etree._Element
    slots: tuple[_Slot, ...]


class _TemplateCache:
    """One thread's templates per approval, least recently used dropped first.

    Found by the approval object first (an Approval is a frozen contract whose
    certificate is never changed in place), else by its content (its JSON) and the
    schema file, so a new object with changed data never meets a stale template.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._by_content: OrderedDict[tuple[str, str], _Template] = OrderedDict()
        self._by_object: dict[int, tuple[weakref.ref[Approval], IviSchema, _Template]] = {}

    def get(self, approval: Approval, schema: IviSchema) -> _Template:
        known = self._by_object.get(id(approval))
        if known is not None and known[0]() is approval and known[1] is schema:
            return known[2]
        key = (str(schema.path), approval.model_dump_json())
        template = self._by_content.get(key)
        if template is None:
            template = _template(approval, schema)
        self._by_content[key] = template
        self._by_content.move_to_end(key)
        while len(self._by_content) > self._size:
            self._by_content.popitem(last=False)
        forget = partial(self._forget, id(approval))
        self._by_object[id(approval)] = (weakref.ref(approval, forget), schema, template)
        return template

    def _forget(self, object_id: int, _ref: weakref.ref[Approval]) -> None:
        self._by_object.pop(object_id, None)


_PER_THREAD: Final = threading.local()


def _templates() -> _TemplateCache:
    """This thread's cache: a template is filled in place, so no two threads may share one."""
    cache: _TemplateCache | None = getattr(_PER_THREAD, "templates", None)
    if cache is None:
        cache = _PER_THREAD.templates = _TemplateCache(_TEMPLATES_KEPT)
    return cache


def _template(approval: Approval, schema: IviSchema) -> _Template:
    # IVI as the default namespace, as in the specimen (lxml-stubs do not type the None prefix).
    root = etree.Element(_ROOT, nsmap={None: NAMESPACE})  # type: ignore[dict-item]
    tree = {"Header": _header_placeholders(approval), "CocDataGroup": _with_placeholders(approval)}
    try:
        schema.encode(tree, root, "InitialVehicleInformation")
    except IviTreeError as exc:
        raise RenderError(
            f"certificate data of approval {approval.key} does not fit IVI 2.0", [str(exc)]
        ) from exc
    return _Template(root, tuple(_slots(root)))


def _header_placeholders(approval: Approval) -> dict[str, str]:
    # The five header fields plus the optional intended country (change overview, mandatory fields).
    return {
        "IviReferenceId": _SLOT + "reference_id",
        "IviVersionNumberXsd": XSD_VERSION,
        "IviVersionNumber": _SLOT + "version_number",
        "IviVersionDateTime": _SLOT + "version_time",
        "IntendedCountryRegistration": _SLOT + "intended_country",
        "DesignatedTypeApprovalCountry": approval.designated_country,
    }


def _with_placeholders(approval: Approval) -> dict[str, Any]:
    """The approval's tree, its identity fields, and a placeholder at every per-vehicle element."""
    tree = {name: value for name, value in approval.certificate.items() if name not in NOT_ISSUED}
    for element, field in FROM_APPROVAL_FIELDS.items():
        value = getattr(approval, field)
        tree[element] = value.isoformat() if isinstance(value, dt.date) else value
    tree["VehicleIdentificationNumber"] = _SLOT + "vin"
    tree["DateManufactureVehicle"] = _SLOT + "manufactured_on"
    tree["ColourTable"] = {"ColourGroup": [{"Colour": _SLOT + "colours"}]}
    tree["MassGroup"] = {**_group(tree.get("MassGroup")), "ActualMass": _SLOT + "actual_mass"}
    if "SigningAuthorityTable" in tree:
        tree["SigningAuthorityTable"] = _each_group(
            tree["SigningAuthorityTable"], "SigningAuthorityGroup", _signature_placeholder
        )
    if "AxleTable" in tree:
        tree["AxleTable"] = _each_group(tree["AxleTable"], "AxleGroup", _axle_placeholders)
    if "ManufacturerTable" in tree:
        tree["ManufacturerTable"] = _previous_stage_placeholders(tree["ManufacturerTable"])
    return tree


def _previous_stage_placeholders(table: Any) -> Any:
    """A later stage's last ManufacturerGroup names its previous stage (EUCARIS set-up manual, multistage).

    What the approval states is kept; each value it leaves out is a placeholder the
    build's ``previous_stage`` fills, and dropped when the build has none (validation
    reports PREVIOUS_STAGE_MISSING). A first stage names no previous stage.
    """
    if not isinstance(table, Mapping) or not isinstance(table.get("ManufacturerGroup"), list):
        return table
    groups = [_group(item) for item in table["ManufacturerGroup"]]
    if not groups or (_number(groups[-1].get("ManufacturerStageNumber")) or 0) <= 1:
        return table
    last = groups[-1]
    for element, name in FROM_PREVIOUS_STAGE.items():
        last.setdefault(element, f"{_SLOT}previous_{name}")
    return {**table, "ManufacturerGroup": groups}


def _group(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _each_group(table: Any, name: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    if not isinstance(table, Mapping) or name not in table:
        return table  # malformed: encode or the schema check says what is wrong
    return {**table, name: [change(_group(item)) for item in _items(table[name])]}


def _signature_placeholder(group: dict[str, Any]) -> dict[str, Any]:
    return {**group, "SignatureDate": _SLOT + "signature_date"}


def _axle_placeholders(axle: dict[str, Any]) -> dict[str, Any]:
    number = _number(axle.get("AxleNumber"))
    tyres = axle.get("TyreAxleTable")
    if not isinstance(tyres, Mapping) or "TyreAxleGroup" not in tyres:
        return axle

    def mark(tyre: dict[str, Any]) -> dict[str, Any]:
        option = _number(tyre.get("TyreNumber"))
        return {**tyre, "TyreFittedProductionIndicator": f"{_SLOT}tyre:{number}:{option}"}

    return {**axle, "TyreAxleTable": _each_group(tyres, "TyreAxleGroup", mark)}


def _number(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _slots(root: etree._Element) -> Iterator[_Slot]:
    for element in root.iter(etree.Element):
        text = element.text
        if text is None or not text.startswith(_SLOT):
            continue
        kind, _, rest = text[1:].partition(":")
        if kind == "tyre":
            axle, _, tyre = rest.partition(":")
            yield _Slot(element, kind, _number(axle), _number(tyre))
        else:
            yield _Slot(element, kind)
