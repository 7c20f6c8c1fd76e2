"""What the official IVI 2.0 schema says about its elements: names, order, occurrences, types.

The schema (IVI-2.0.xsd, published by EReg on the documentation page of the EUCARIS
eCoC site) is the one source of this knowledge: it is read once per path with lxml
(some 20 ms; xmlschema needs over a second for the same file) and nothing is
typed in by hand, so a new vehicle category costs data, not code (design, "Certificate
data").

Certificate data travels as a *tree* keyed by IVI element names, the shape a
schema-aware decoder such as xmlschema gives: a complex element is a mapping, an
element that may occur more than once (``maxOccurs`` > 1, the ``...Group`` inside a
``...Table``) is a list of items, a leaf is its lexical value as a string (ints and
floats are accepted and written with ``str``).

Per-vehicle elements (``PER_VEHICLE``) are the paths, relative to ``CocDataGroup``,
that rendering fills from the build record or from the Approval's own fields, never
from the approval's certificate tree:

- from the build record: the VIN, the date of manufacture, the colours, the actual
  mass, the fitted-tyre indicator and the signature date (domain, "Per type, per
  vehicle"; EUCARIS set-up manual on ``TyreFittedProductionIndicator``);
- from the Approval's fields: TypeApprovalNumber, TypeApprovalIssueDate, Type, Variant,
  Version and VehicleCategory (one source for the approval identity);
- ``ProductionYearSmallSeries`` and ``ProductionSequentialNumberSmallSeries``: numbers
  of one small-series vehicle. The eCoC duty does not cover small series (domain, "Law
  and dates"), so the product never writes them and an approval must not carry them.

Previous stage (``FROM_PREVIOUS_STAGE``): in the last ``ManufacturerGroup`` of a later
stage of a multistage vehicle, ``PreviousStageTypeApprovalNumber``, ``...Type``,
``...Variant`` and ``...Version`` name what the base vehicle was approved as. An
approval may fix them (every base vehicle of the version is the same); where it does
not, render takes them per vehicle from the build record's ``previous_stage``, read
from the base vehicle's certificate (EUCARIS set-up manual: later stages name the
previous stage's approval number, type, variant and version). They are therefore
allowed in the approval's tree and not in ``PER_VEHICLE``.

Decided against: WLTP values of an individual vehicle of an interpolation family
(``WltpEmissionTestParametersGroup`` and the ``TestWltp...`` groups under each energy
source) and the per-vehicle VECTO hashes (``VectoGroup/CryptographicHash...``) are per
vehicle by nature, but the BuildRecord contract has no field for them yet. They stay
in the approval's tree, which is right for a version with one set of values; they join
``PER_VEHICLE`` together with a build-record field for them.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Final

from lxml import etree

from shared.xml import IVI_NS, check_imports, load_ivi_schema, load_ivi_schema_unsigned, make_parser

__all__ = [
    "FROM_APPROVAL_FIELDS",
    "FROM_BUILD",
    "FROM_PREVIOUS_STAGE",
    "NAMESPACE",
    "NOT_ISSUED",
    "PER_VEHICLE",
    "PREVIOUS_STAGE_GROUP",
    "ComplexType",
    "ElementDecl",
    "IviSchema",
    "IviSchemaError",
    "IviTreeError",
    "SimpleType",
    "TreeProblem",
    "without_paths",
]

NAMESPACE: Final = IVI_NS
_XS_NS: Final = "http://www.w3.org/2001/XMLSchema"
_XS: Final = "{" + _XS_NS + "}"

# Paths relative to CocDataGroup, without indexes. See the module docstring.
FROM_BUILD: Final = frozenset(
    {
        "VehicleIdentificationNumber",
        "DateManufactureVehicle",
        "ColourTable",
        "MassGroup/ActualMass",
        "AxleTable/AxleGroup/TyreAxleTable/TyreAxleGroup/TyreFittedProductionIndicator",
        "SigningAuthorityTable/SigningAuthorityGroup/SignatureDate",
    }
)
FROM_APPROVAL_FIELDS: Final[Mapping[str, str]] = {
    # IVI element -> attribute of shared.contracts.Approval
    "TypeApprovalNumber": "number",
    "TypeApprovalIssueDate": "issue_date",
    "Type": "type",
    "Variant": "variant",
    "Version": "version",
    "VehicleCategory": "category",
}
NOT_ISSUED: Final = frozenset({"ProductionYearSmallSeries", "ProductionSequentialNumberSmallSeries"})
# Elements of the last ManufacturerGroup -> attribute of shared.contracts.builds.PreviousStage: what
# render lays in from the build's previous stage where the approval does not state them.
PREVIOUS_STAGE_GROUP: Final = "ManufacturerTable/ManufacturerGroup"
FROM_PREVIOUS_STAGE: Final[Mapping[str, str]] = {
    "PreviousStageTypeApprovalNumber": "approval_number",
    "PreviousStageType": "type",
    "PreviousStageVariant": "variant",
    "PreviousStageVersion": "version",
}
PER_VEHICLE: Final = FROM_BUILD | frozenset(FROM_APPROVAL_FIELDS) | NOT_ISSUED

Tree = dict[str, Any]


class IviSchemaError(Exception):
    """The XSD is not the IVI schema, or uses a construct this reader does not know."""


class IviTreeError(ValueError):
    """A tree or an XML subtree does not fit the schema (decode and encode)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class TreeProblem:
    """One way a certificate tree breaks the schema, at an IVI path such as ``.../AxleGroup[2]/AxleTrack``."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class ElementDecl:
    """One child element of a complex type, as the schema declares it."""

    name: str
    type_name: str
    min_occurs: int
    max_occurs: int | None  # None: unbounded
    is_complex: bool
    namespace: str = NAMESPACE

    @property
    def required(self) -> bool:
        return self.min_occurs >= 1

    @property
    def repeated(self) -> bool:
        return self.max_occurs is None or self.max_occurs > 1

    @property
    def tag(self) -> str:
        return f"{{{self.namespace}}}{self.name}"


@dataclass(frozen=True, slots=True)
class ComplexType:
    """A complex type: its child elements in schema order."""

    name: str
    children: tuple[ElementDecl, ...]
    order: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", {child.name: index for index, child in enumerate(self.children)})

    def child(self, name: str) -> ElementDecl | None:
        index = self.order.get(name)
        return None if index is None else self.children[index]


# --- simple types -------------------------------------------------------------------------------

# Built-in XML Schema types the IVI schema derives from: primitive and implicit bounds.
_BUILTINS: Final[Mapping[str, tuple[str, int | None, int | None]]] = {
    "string": ("string", None, None),
    "normalizedString": ("string", None, None),
    "token": ("string", None, None),
    "decimal": ("decimal", None, None),
    "integer": ("integer", None, None),
    "long": ("integer", -(2**63), 2**63 - 1),
    "int": ("integer", -(2**31), 2**31 - 1),
    "short": ("integer", -(2**15), 2**15 - 1),
    "byte": ("integer", -(2**7), 2**7 - 1),
    "nonNegativeInteger": ("integer", 0, None),
    "positiveInteger": ("integer", 1, None),
    "unsignedLong": ("integer", 0, 2**64 - 1),
    "unsignedInt": ("integer", 0, 2**32 - 1),
    "unsignedShort": ("integer", 0, 2**16 - 1),
    "unsignedByte": ("integer", 0, 2**8 - 1),
    "date": ("date", None, None),
    "dateTime": ("dateTime", None, None),
    "boolean": ("boolean", None, None),
}
_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")
_INTEGER = re.compile(r"[+-]?\d+")
_ZONE = r"(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?"
_DATE = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)" + _ZONE)
_DATETIME = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?" + _ZONE)
_FACETS: Final = frozenset(
    {
        "enumeration",
        "length",
        "minLength",
        "maxLength",
        "pattern",
        "totalDigits",
        "fractionDigits",
        "minInclusive",
        "maxInclusive",
        "minExclusive",
        "maxExclusive",
    }
)


@dataclass(frozen=True, slots=True)
class SimpleType:
    """A simple type with its facets, checked the way libxml2 checks them (lxml is the final judge)."""

    name: str
    primitive: str  # string, decimal, integer, date, dateTime or boolean
    enumeration: frozenset[str] = frozenset()
    min_length: int | None = None
    max_length: int | None = None
    patterns: tuple[re.Pattern[str], ...] = ()
    total_digits: int | None = None
    fraction_digits: int | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False

    def problem(self, value: str) -> str | None:
        """Why ``value`` is not a valid lexical value of this type, or None when it is."""
        if self.primitive == "string":
            return self._string_problem(value)
        if self.primitive in ("decimal", "integer"):
            return self._number_problem(value.strip())
        return self._other_problem(value)

    def _string_problem(self, value: str) -> str | None:
        if self.enumeration and value not in self.enumeration:
            return f"'{value}' is not one of the {self.name} codes ({_listing(self.enumeration)})"
        if self.max_length is not None and len(value) > self.max_length:
            return f"'{value}' has {len(value)} characters; {self.name} allows at most {self.max_length}"
        if self.min_length is not None and len(value) < self.min_length:
            return f"'{value}' has {len(value)} characters; {self.name} needs at least {self.min_length}"
        for pattern in self.patterns:
            if not pattern.fullmatch(value):
                return f"'{value}' does not match the {self.name} pattern {pattern.pattern}"
        return None

    def _number_problem(self, value: str) -> str | None:
        lexical = _INTEGER if self.primitive == "integer" else _DECIMAL
        match = lexical.fullmatch(value)
        if match is None or not any(ch.isdigit() for ch in value):
            kind = "a whole number" if self.primitive == "integer" else "a decimal number"
            return f"'{value}' is not {kind} ({self.name})"
        number = Decimal(value)
        if self.enumeration and number not in {Decimal(item) for item in self.enumeration}:
            return f"'{value}' is not one of the {self.name} values ({_listing(self.enumeration)})"
        return self._digits_problem(value, number) or self._range_problem(value, number)

    def _digits_problem(self, value: str, number: Decimal) -> str | None:
        # Digits count in the value space: leading and trailing zeros do not count (XSD 1.0
        # Part 2, 4.3.11-12), as libxml2 counts them.
        _sign, digits, exponent = number.normalize().as_tuple()
        assert isinstance(exponent, int)
        fraction = max(0, -exponent)
        total = len(digits) + exponent if exponent > 0 else max(len(digits), fraction)
        if self.fraction_digits is not None and fraction > self.fraction_digits:
            return f"'{value}' has {fraction} decimals; {self.name} allows at most {self.fraction_digits}"
        if self.total_digits is not None and total > self.total_digits:
            return f"'{value}' has {total} digits; {self.name} allows at most {self.total_digits}"
        return None

    def _range_problem(self, value: str, number: Decimal) -> str | None:
        low, high = self.minimum, self.maximum
        if low is not None and (number < low or (self.min_exclusive and number == low)):
            return f"'{value}' is below the {self.name} minimum {low}"
        if high is not None and (number > high or (self.max_exclusive and number == high)):
            return f"'{value}' is above the {self.name} maximum {high}"
        return None

    def _other_problem(self, value: str) -> str | None:
        if self.primitive == "boolean":
            ok = value.strip() in ("true", "false", "1", "0")
            return None if ok else f"'{value}' is not a boolean ({self.name})"
        if self.primitive == "date":
            return None if _valid_date(value) else f"'{value}' is not a date YYYY-MM-DD ({self.name})"
        if _valid_datetime(value):
            return None
        return f"'{value}' is not a date-time like 2015-03-17T09:55:21.351+01:00 ({self.name})"


def _listing(values: Collection[str], limit: int = 12) -> str:
    ordered = sorted(values)
    shown = ", ".join(ordered[:limit])
    return shown + (", …" if len(ordered) > limit else "")


def _real_date(year: str, month: str, day: str) -> bool:
    try:
        dt.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _valid_date(value: str) -> bool:
    match = _DATE.fullmatch(value)
    return match is not None and _real_date(*match.group(1, 2, 3))


def _valid_datetime(value: str) -> bool:
    match = _DATETIME.fullmatch(value)
    if match is None or not _real_date(*match.group(1, 2, 3)):
        return False
    hour, minute, second = (int(part) for part in match.group(4, 5, 6))
    if hour == 24:  # 24:00:00 is end of day (XSD 1.0 Part 2, 3.2.7)
        return minute == 0 and second == 0
    return hour < 24 and minute < 60 and second < 60


# --- reading the XSD ----------------------------------------------------------------------------


def _qname(element: etree._Element, attribute: str) -> tuple[str, str]:
    """Resolve a QName-valued attribute (``type``, ``base``, ``ref``) to (namespace, local name)."""
    value = element.get(attribute, "")
    prefix, _, local = value.rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    if namespace is None:
        raise IviSchemaError(f"line {element.sourceline}: unknown prefix in {attribute}={value!r}")
    return namespace, local


def _type_name(element: etree._Element) -> str:
    """A named type: the local name for the IVI's own types, ``xs:name`` for built-in ones."""
    namespace, local = _qname(element, "type")
    return f"xs:{local}" if namespace == _XS_NS else local


def _occurs(element: etree._Element) -> tuple[int, int | None]:
    high = element.get("maxOccurs", "1")
    return int(element.get("minOccurs", "1")), None if high == "unbounded" else int(high)


_CONTENT_MODEL: Final = frozenset({_XS + "all", _XS + "sequence", _XS + "annotation", _XS + "documentation"})


def _raw_children(complex_type: etree._Element) -> Iterator[tuple[str, str, str, int, int | None]]:
    """(namespace, name, type name, minOccurs, maxOccurs) of each child, in schema order."""
    for node in complex_type.iterdescendants():
        if not isinstance(node.tag, str) or node.tag in _CONTENT_MODEL:
            continue
        if node.tag != _XS + "element":
            construct = etree.QName(node).localname
            raise IviSchemaError(f"line {node.sourceline}: xs:{construct} is not supported in a complex type")
        low, high = _occurs(node)
        if node.get("ref"):
            namespace, name = _qname(node, "ref")
            yield namespace, name, "", low, high
        elif node.get("type"):
            yield NAMESPACE, node.get("name", ""), _type_name(node), low, high
        else:
            raise IviSchemaError(f"line {node.sourceline}: element without a named type is not supported")


def _read_complex_types(root: etree._Element) -> dict[str, ComplexType]:
    raw = {node.get("name", ""): list(_raw_children(node)) for node in root.iterchildren(_XS + "complexType")}
    types: dict[str, ComplexType] = {}
    for name, children in raw.items():
        decls = tuple(
            ElementDecl(child, type_name, low, high, type_name in raw or namespace != NAMESPACE, namespace)
            for namespace, child, type_name, low, high in children
        )
        types[name] = ComplexType(name, decls)
    return types


def _facets(restriction: etree._Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for facet in restriction.iterchildren(etree.Element):
        name = etree.QName(facet).localname
        if name == "annotation":
            continue
        if name not in _FACETS:
            raise IviSchemaError(f"line {facet.sourceline}: facet xs:{name} is not supported")
        found.setdefault(name, []).append(facet.get("value", ""))
    return found


def _simple_type(
    name: str, base: tuple[str, int | None, int | None], facets: dict[str, list[str]]
) -> SimpleType:
    primitive, low, high = base

    def one(facet: str) -> str | None:
        values = facets.get(facet)
        return values[-1] if values else None

    def number(facet: str) -> int | None:
        value = one(facet)
        return None if value is None else int(value)

    # An explicit bound, else the built-in type's own (xs:short stops at 32767).
    minimum = one("minInclusive") or one("minExclusive") or (None if low is None else str(low))
    maximum = one("maxInclusive") or one("maxExclusive") or (None if high is None else str(high))
    return SimpleType(
        name=name,
        primitive=primitive,
        enumeration=frozenset(facets.get("enumeration", ())),
        min_length=number("minLength") if one("length") is None else number("length"),
        max_length=number("maxLength") if one("length") is None else number("length"),
        # XSD patterns are anchored; the IVI ones use no XSD-only syntax, so fullmatch applies.
        patterns=tuple(re.compile(pattern) for pattern in facets.get("pattern", ())),
        total_digits=number("totalDigits"),
        fraction_digits=number("fractionDigits"),
        minimum=None if minimum is None else Decimal(minimum),
        maximum=None if maximum is None else Decimal(maximum),
        min_exclusive=one("minExclusive") is not None,
        max_exclusive=one("maxExclusive") is not None,
    )


def _read_simple_types(root: etree._Element) -> dict[str, SimpleType]:
    types: dict[str, SimpleType] = {}
    for node in root.iterchildren(_XS + "simpleType"):
        name = node.get("name", "")
        restriction = node.find(_XS + "restriction")
        if restriction is None:
            raise IviSchemaError(f"line {node.sourceline}: simple type {name} is not a restriction")
        namespace, base = _qname(restriction, "base")
        if namespace != _XS_NS or base not in _BUILTINS:
            raise IviSchemaError(
                f"line {node.sourceline}: {name} derives from {base}, which is not supported"
            )
        types[name] = _simple_type(name, _BUILTINS[base], _facets(restriction))
    for builtin, primitive in _BUILTINS.items():
        types.setdefault(f"xs:{builtin}", _simple_type(f"xs:{builtin}", primitive, {}))
    return types


def _read_global_elements(root: etree._Element, complex_names: Collection[str]) -> dict[str, ElementDecl]:
    found = {}
    for node in root.iterchildren(_XS + "element"):
        type_name = _type_name(node)
        name = node.get("name", "")
        found[name] = ElementDecl(name, type_name, 1, 1, type_name in complex_names)
    return found


# --- the schema ---------------------------------------------------------------------------------


class IviSchema:
    """The IVI 2.0 schema as knowledge: element declarations per complex type, simple types, trees."""

    def __init__(
        self,
        path: Path,
        complex_types: Mapping[str, ComplexType],
        simple_types: Mapping[str, SimpleType],
        global_elements: Mapping[str, ElementDecl],
    ) -> None:
        self.path = path
        self.complex_types = complex_types
        self.simple_types = simple_types
        self.global_elements = global_elements
        self._type_of_name = _type_of_element_name(complex_types, global_elements)
        self._plans = _plans(complex_types)

    @classmethod
    def load(cls, xsd_path: Path | str) -> IviSchema:
        """Read the schema at ``xsd_path``; a second call for the same file returns the same object."""
        return _load(Path(xsd_path).resolve())

    def __repr__(self) -> str:
        return f"IviSchema({str(self.path)!r}, {len(self.complex_types)} complex types)"

    # -- lxml validators of the same file (compiled once, in shared.xml)

    @cached_property
    def validator(self) -> etree.XMLSchema:
        """The schema as published: the signature is required."""
        return load_ivi_schema(self.path)

    @cached_property
    def unsigned_validator(self) -> etree.XMLSchema:
        """The schema with only the root's signature optional, for unsigned documents."""
        return load_ivi_schema_unsigned(self.path)

    # -- lookups

    def complex_type(self, name: str) -> ComplexType:
        try:
            return self.complex_types[name]
        except KeyError:
            raise IviTreeError(name, "no such complex type in the IVI schema") from None

    def declaration(self, path: str) -> ElementDecl:
        """The declaration of an element path such as ``CocDataGroup/MassGroup/ActualMass``.

        The first step is a global element or any complex element name; indexes such as
        ``AxleGroup[2]`` are ignored.
        """
        steps = [step.partition("[")[0] for step in path.split("/")]
        decl = self.global_elements.get(steps[0])
        if decl is None:
            type_name = self._type_of_name.get(steps[0])
            if type_name is None:
                raise IviTreeError(path, f"no element {steps[0]} in the IVI schema")
            decl = ElementDecl(steps[0], type_name, 1, 1, True)
        for step in steps[1:]:
            ctype = self.complex_types.get(decl.type_name)
            child = ctype.child(step) if ctype is not None else None
            if child is None:
                raise IviTreeError(path, f"{step} is not a child of {decl.name}")
            decl = child
        return decl

    def element_type(self, path: str) -> ComplexType:
        """The complex type of the element at ``path`` (see ``declaration``)."""
        decl = self.declaration(path)
        if not decl.is_complex or decl.type_name not in self.complex_types:
            raise IviTreeError(path, "is a simple element, not a group")
        return self.complex_types[decl.type_name]

    def simple_type(self, decl: ElementDecl) -> SimpleType:
        """The simple type of a leaf declaration, to check one value (``SimpleType.problem``)."""
        return self.simple_types[decl.type_name]

    # -- trees

    def check_tree(
        self, tree: Any, at: str = "CocDataGroup", *, per_vehicle: Collection[str] | None = None
    ) -> list[TreeProblem]:
        """Every way ``tree`` breaks the schema below the element ``at``.

        Reports unknown element names, a list where one element is allowed, a required
        child missing in a present group, and a leaf value its simple type refuses.
        ``per_vehicle`` holds paths relative to ``at`` that the build record fills: they
        are not required, and present they are reported. By default that is
        ``PER_VEHICLE`` when ``at`` is CocDataGroup (an approval's certificate) and
        nothing otherwise; pass ``()`` to check a complete certificate.
        """
        if per_vehicle is None:
            per_vehicle = PER_VEHICLE if at == "CocDataGroup" else ()
        check = _TreeCheck(self, frozenset(per_vehicle))
        check.group(tree, self.element_type(at), at, "")
        return check.problems

    def decode(self, element: etree._Element, type_name: str | None = None) -> Tree:
        """The tree of an XML element (an IVI group); foreign elements such as ds:Signature are skipped."""
        name = _local_name(element.tag)
        ctype = self.complex_type(type_name or self._type_name_for(name))
        return self._decode(element, ctype, name)

    def encode(self, tree: Mapping[str, Any], parent: etree._Element, type_name: str | None = None) -> None:
        """Append the elements of ``tree`` to ``parent`` in schema order.

        xs:all leaves the order free; writing schema order keeps output stable
        (domain, "The format: IVI 2.0"). Plain SubElement calls with a precomputed
        order per type, no xmlschema encoding: render builds its templates with it.
        """
        name = type_name or self._type_name_for(_local_name(parent.tag))
        self._encode(tree, parent, self._plan(name), _local_name(parent.tag))

    # -- internals

    def _type_name_for(self, element_name: str) -> str:
        type_name = self._type_of_name.get(element_name)
        if type_name is None:
            raise IviTreeError(element_name, "not a group of the IVI schema (or ambiguous): name its type")
        return type_name

    def _decode(self, element: etree._Element, ctype: ComplexType, path: str) -> Tree:
        tree: Tree = {}
        for child in element.iterchildren(etree.Element):
            namespace, name = _split_tag(child.tag)
            decl = ctype.child(name)
            if decl is None or decl.namespace != namespace:
                raise IviTreeError(f"{path}/{name}", f"not an element of {ctype.name} in IVI 2.0")
            if namespace != NAMESPACE:
                continue  # the signature is not certificate data
            if decl.is_complex:
                value: Any = self._decode(child, self.complex_types[decl.type_name], f"{path}/{name}")
            else:
                value = child.text or ""
            if decl.repeated:
                tree.setdefault(name, []).append(value)
            elif name in tree:
                raise IviTreeError(f"{path}/{name}", "occurs more than once; the schema allows one")
            else:
                tree[name] = value
        return tree

    def _plan(self, type_name: str) -> _Plan:
        plan = self._plans.get(type_name)
        if plan is None:
            raise IviTreeError(type_name, "no such complex type in the IVI schema")
        return plan

    def _encode(self, tree: Mapping[str, Any], parent: etree._Element, plan: _Plan, path: str) -> None:
        if not isinstance(tree, Mapping):
            raise IviTreeError(path, f"must be a group (a mapping), not {type(tree).__name__}")
        try:
            names = sorted(tree, key=plan.order.__getitem__)
        except KeyError as exc:
            raise IviTreeError(f"{path}/{exc.args[0]}", f"not an element of {plan.type_name}") from None
        sub_element = etree.SubElement
        for name in names:
            value = tree[name]
            if value is None:
                continue
            tag, child_plan, repeated = plan.entries[name]
            items = value if repeated and isinstance(value, list) else (value,)
            for item in items:
                element = sub_element(parent, tag)
                if child_plan is not None:
                    self._encode(item, element, child_plan, f"{path}/{name}")
                else:
                    element.text = item if isinstance(item, str) else str(item)


class _Plan:
    """Precomputed encoding of one complex type: per child its order, tag, plan and repetition."""

    __slots__ = ("_decls", "entries", "order", "type_name")

    def __init__(self, ctype: ComplexType) -> None:
        self.type_name = ctype.name
        encodable = [decl for decl in ctype.children if decl.namespace == NAMESPACE]
        self.order = {decl.name: index for index, decl in enumerate(encodable)}
        self.entries: dict[str, tuple[str, _Plan | None, bool]] = {}
        self._decls = encodable

    def link(self, plans: Mapping[str, _Plan]) -> None:
        self.entries = {
            decl.name: (decl.tag, plans[decl.type_name] if decl.is_complex else None, decl.repeated)
            for decl in self._decls
        }


def _plans(complex_types: Mapping[str, ComplexType]) -> dict[str, _Plan]:
    plans = {name: _Plan(ctype) for name, ctype in complex_types.items()}
    for plan in plans.values():
        plan.link(plans)
    return plans


def _type_of_element_name(
    complex_types: Mapping[str, ComplexType], global_elements: Mapping[str, ElementDecl]
) -> dict[str, str]:
    """Element name -> complex type name, for names that always carry the same complex type."""
    seen: dict[str, set[str]] = {}
    decls = [*global_elements.values(), *(d for t in complex_types.values() for d in t.children)]
    for decl in decls:
        if decl.is_complex and decl.namespace == NAMESPACE:
            seen.setdefault(decl.name, set()).add(decl.type_name)
    return {name: next(iter(types)) for name, types in seen.items() if len(types) == 1}


def _split_tag(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _local_name(tag: Any) -> str:
    return _split_tag(str(tag))[1]


@lru_cache(maxsize=4)
def _load(path: Path) -> IviSchema:
    root = etree.parse(str(path), make_parser()).getroot()
    if root.tag != _XS + "schema" or root.get("targetNamespace") != NAMESPACE:
        raise IviSchemaError(f"{path} is not the IVI 2.0 schema (target namespace {NAMESPACE})")
    check_imports(root, path)  # its validators need them: said at load, not at the first document
    complex_types = _read_complex_types(root)
    simple_types = _read_simple_types(root)
    for ctype in complex_types.values():
        for decl in ctype.children:
            if not decl.is_complex and decl.type_name not in simple_types:
                raise IviSchemaError(f"{ctype.name}/{decl.name}: type {decl.type_name} is not defined")
    return IviSchema(path, complex_types, simple_types, _read_global_elements(root, complex_types))


# --- checking a tree ----------------------------------------------------------------------------


class _TreeCheck:
    def __init__(self, schema: IviSchema, per_vehicle: frozenset[str]) -> None:
        self.schema = schema
        self.per_vehicle = per_vehicle
        self.problems: list[TreeProblem] = []

    def report(self, path: str, message: str) -> None:
        self.problems.append(TreeProblem(path, message))

    def group(self, node: Any, ctype: ComplexType, path: str, rel: str) -> None:
        if not isinstance(node, Mapping):
            self.report(path, f"must be a group of elements (a mapping), not {_kind(node)}")
            return
        for name, value in node.items():
            decl = ctype.child(str(name))
            if decl is None or decl.namespace != NAMESPACE:
                self.report(f"{path}/{name}", _unknown(str(name), ctype))
            elif value is not None:
                self.element(value, decl, f"{path}/{name}", f"{rel}/{name}".lstrip("/"))
        for decl in ctype.children:
            rel_child = f"{rel}/{decl.name}".lstrip("/")
            if decl.required and node.get(decl.name) is None and rel_child not in self.per_vehicle:
                self.report(f"{path}/{decl.name}", f"required element missing in {ctype.name}")

    def element(self, value: Any, decl: ElementDecl, path: str, rel: str) -> None:
        if rel in self.per_vehicle:
            self.report(path, _per_vehicle_message(rel))
            return
        if not decl.repeated:
            if isinstance(value, list):
                self.report(path, f"a list of {len(value)} where the schema allows one {decl.name}")
            else:
                self.item(value, decl, path, rel)
            return
        if not isinstance(value, list):
            self.report(path, f"{decl.name} may repeat: give a list of items")
            return
        if len(value) < decl.min_occurs:
            self.report(path, f"needs at least {decl.min_occurs} {decl.name}, has {len(value)}")
        for index, item in enumerate(value, start=1):
            self.item(item, decl, f"{path}[{index}]", rel)

    def item(self, value: Any, decl: ElementDecl, path: str, rel: str) -> None:
        if decl.is_complex:
            self.group(value, self.schema.complex_types[decl.type_name], path, rel)
            return
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            self.report(path, f"must be text or a number, not {_kind(value)}")
            return
        problem = self.schema.simple_types[decl.type_name].problem(
            value if isinstance(value, str) else str(value)
        )
        if problem is not None:
            self.report(path, problem)


def _per_vehicle_message(rel: str) -> str:
    if rel in FROM_APPROVAL_FIELDS:
        return f"set from the approval's own field '{FROM_APPROVAL_FIELDS[rel]}', not kept in its certificate"
    if rel in NOT_ISSUED:
        return "small-series element: the eCoC duty does not cover small series"
    return "per-vehicle element: it comes from the build record, not the approval"


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    return "a list" if isinstance(value, list) else "text" if isinstance(value, str) else type(value).__name__


def _unknown(name: str, ctype: ComplexType) -> str:
    close = difflib.get_close_matches(name, list(ctype.order), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown element {name}: not a child of {ctype.name} in IVI 2.0{hint}"


# --- tree helpers -------------------------------------------------------------------------------


def without_paths(tree: Mapping[str, Any], paths: Collection[str]) -> Tree:
    """A copy of ``tree`` without the elements at ``paths`` (relative, no indexes; lists walked)."""
    split = [path.split("/") for path in paths]
    return _without(tree, split)


def _without(tree: Mapping[str, Any], paths: list[list[str]]) -> Tree:
    here = {steps[0] for steps in paths if len(steps) == 1}
    result: Tree = {}
    for name, value in tree.items():
        if name in here:
            continue
        deeper = [steps[1:] for steps in paths if len(steps) > 1 and steps[0] == name]
        if not deeper:
            result[name] = value
        elif isinstance(value, list):
            result[name] = [_without(item, deeper) if isinstance(item, Mapping) else item for item in value]
        else:
            result[name] = _without(value, deeper) if isinstance(value, Mapping) else value
    return result
