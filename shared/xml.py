"""The one XML parser factory and the IVI 2.0 schema loaders.

Every piece of XML the product reads goes through ``make_parser`` or ``parse_bytes``:
no DTD, no entity expansion, no network (the habits signxml keeps; OWASP XXE
prevention cheat sheet). Blank text is kept as it is, because a signed document
must never be re-formatted: any whitespace change breaks its digest (W3C XML-DSig
1.1, section 4.4.3.2, and the EUCARIS set-up manual on enveloped signatures).

Schemas are compiled once per process and per path. The published IVI 2.0 XSD makes
``sig:Signature`` mandatory, so render checks unsigned documents against a copy made
in memory with only that element optional, and signing checks the signed document
against the schema as published (design, "XML and signing").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from lxml import etree

__all__ = [
    "DSIG_NS",
    "IVI_NS",
    "SchemaImportMissing",
    "XmlInputError",
    "check_imports",
    "load_ivi_schema",
    "load_ivi_schema_unsigned",
    "make_parser",
    "parse_bytes",
    "validate",
]

IVI_NS = "http://eu.ereg.initialvehicleinformation.v2"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
XSD_NS = "http://www.w3.org/2001/XMLSchema"

# A DOCTYPE can only stand in the prolog: after the XML declaration, comments,
# processing instructions and white space (XML 1.0, production [22] prolog).
# This catches it before libxml2 reads the internal subset; the check of
# ``docinfo`` after parsing covers encodings this byte pattern cannot see (UTF-16).
# Atomic groups keep the scan to the prolog: a lazy ``.*?`` must not run on into
# the body looking for another ``?>`` when no DOCTYPE follows.
_DOCTYPE_IN_PROLOG = re.compile(rb"\A(?:\xef\xbb\xbf)?(?>\s+|<\?.*?\?>|<!--.*?-->)*+<!DOCTYPE", re.S)

_local = threading.local()


class XmlInputError(ValueError):
    """The bytes are not a document the product accepts: malformed, or carrying a DTD."""


class SchemaImportMissing(XmlInputError):
    """A schema imports a local file that is not there (IVI-2.0.xsd needs xmldsig-core-schema.xsd beside it)."""


def make_parser() -> etree.XMLParser:
    """A parser that never loads a DTD, expands an entity or touches the network.

    ``huge_tree`` stays off so libxml2 keeps its limits on depth and text size, and
    blank text is kept so a signed document parses back to exactly what was signed.
    """
    return etree.XMLParser(
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=False,
        collect_ids=False,
    )


def _thread_parser() -> etree.XMLParser:
    # lxml parsers must not be used by two threads at once; one per thread, made once.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = make_parser()
        _local.parser = parser
    return parser


def parse_bytes(data: bytes) -> etree._Element:
    """Parse a whole document, refusing DTDs and reporting malformed XML by line and column."""
    if _DOCTYPE_IN_PROLOG.match(data):
        raise XmlInputError("document carries a DTD (<!DOCTYPE ...>); DTDs are not accepted")
    try:
        root = etree.fromstring(data, _thread_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        raise XmlInputError(f"not well-formed XML at line {line}, column {column}: {exc.msg}") from exc
    # libxml2 records any DOCTYPE, with or without an internal subset, as internalDTD.
    if root.getroottree().docinfo.internalDTD is not None:
        raise XmlInputError("document carries a DTD (<!DOCTYPE ...>); DTDs are not accepted")
    return root


class _LocalFilesOnly(etree.Resolver):
    """Refuse every non-file URL while a schema and its imports are loaded.

    IVI-2.0.xsd imports xmldsig-core-schema.xsd by relative path, which resolves to a
    file beside it; that file names the XML Schema DTD by an http URL, which must never
    be fetched. ``no_network`` covers the parser we own; this covers the parser libxml2
    opens for ``xs:import``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []

    # lxml calls resolve(url, id, context); lxml-stubs 0.5 leave the context out.
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        if "://" in system_url and not system_url.startswith("file://"):
            self.refused.append(system_url)
            return self.resolve_string("", context, base_url=None)  # an empty document: the load fails
        return None  # a local file: libxml2 reads it


def check_imports(schema: etree._Element, xsd_path: Path) -> None:
    """Raise ``SchemaImportMissing`` naming the first file the schema imports by relative path that is missing.

    libxml2 only warns about a missing import, then fails on the first reference
    into its namespace (``sig:Signature`` does not resolve): a message that names
    neither the file nor what to do.
    """
    for step in (*schema.findall(f"{{{XSD_NS}}}import"), *schema.findall(f"{{{XSD_NS}}}include")):
        location = step.get("schemaLocation")
        if location and "://" not in location and not (xsd_path.parent / location).is_file():
            raise SchemaImportMissing(
                f"schema {xsd_path} imports {location}, which is not beside it "
                f"({xsd_path.parent / location} is missing)"
            )


@lru_cache(maxsize=4)
def _load_schema(xsd_path: Path, signature_optional: bool) -> etree.XMLSchema:
    guard = _LocalFilesOnly()
    parser = make_parser()
    parser.resolvers.add(guard)
    try:
        tree = etree.parse(str(xsd_path), parser)
        check_imports(tree.getroot(), xsd_path)
        if signature_optional:
            _make_root_signature_optional(tree)
        return etree.XMLSchema(tree)
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        if guard.refused:
            raise XmlInputError(
                f"schema {xsd_path} needs {guard.refused[0]}; schemas are read from local "
                "files only, put the file beside the schema and import it by relative path"
            ) from exc
        raise XmlInputError(f"cannot load schema {xsd_path}: {exc}") from exc


def _make_root_signature_optional(tree: etree._ElementTree) -> None:
    found = tree.xpath(
        "/xs:schema/xs:complexType[@name='InitialVehicleInformation']"
        "/xs:all/xs:element[substring-after(@ref, ':') = 'Signature']",
        namespaces={"xs": XSD_NS},
    )
    if not isinstance(found, list) or len(found) != 1:
        raise XmlInputError(
            "the IVI schema has no single Signature element under InitialVehicleInformation; "
            "is this the published IVI-2.0.xsd?"
        )
    element = found[0]
    assert isinstance(element, etree._Element)
    element.set("minOccurs", "0")


def load_ivi_schema(xsd_path: Path) -> etree.XMLSchema:
    """The IVI 2.0 schema as published (signature required); compiled once per path."""
    return _load_schema(Path(xsd_path).resolve(), False)


def load_ivi_schema_unsigned(xsd_path: Path) -> etree.XMLSchema:
    """The IVI 2.0 schema with only the root's ``sig:Signature`` made optional.

    The change is made on the parsed XSD in memory; no copy of the schema is written.
    """
    return _load_schema(Path(xsd_path).resolve(), True)


def validate(schema: etree.XMLSchema, doc: etree._Element | etree._ElementTree) -> list[str]:
    """Validate and return readable errors (``line N: message``); empty when valid."""
    if schema.validate(doc):
        return []
    entries = cast(Iterable[Any], schema.error_log)  # lxml-stubs 0.5 do not type the log
    return [f"line {error.line}: {error.message}" for error in entries]
