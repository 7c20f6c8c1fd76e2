"""The XML parser factory and the IVI 2.0 schema loaders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from shared.ivi import IviSchema
from shared.xml import (
    SchemaImportMissing,
    XmlInputError,
    load_ivi_schema,
    load_ivi_schema_unsigned,
    parse_bytes,
    validate,
)

pytestmark = pytest.mark.unit


def test_official_specimen_is_valid_against_the_published_schema(
    xsd_path: Path, specimen_bytes: bytes
) -> None:
    assert validate(load_ivi_schema(xsd_path), parse_bytes(specimen_bytes)) == []


def test_unsigned_specimen_is_valid_only_against_the_schema_with_optional_signature(
    xsd_path: Path, unsigned_specimen: bytes
) -> None:
    doc = parse_bytes(unsigned_specimen)

    assert validate(load_ivi_schema_unsigned(xsd_path), doc) == []
    errors = validate(load_ivi_schema(xsd_path), doc)
    assert len(errors) == 1
    assert "Signature" in errors[0] and errors[0].startswith("line ")


def test_unsigned_schema_still_requires_everything_but_the_signature(
    xsd_path: Path, unsigned_specimen: bytes
) -> None:
    doc = parse_bytes(unsigned_specimen)
    header = doc.find("{http://eu.ereg.initialvehicleinformation.v2}Header")
    assert header is not None
    doc.remove(header)

    errors = validate(load_ivi_schema_unsigned(xsd_path), doc)

    assert any("Header" in error for error in errors)


def test_schemas_are_compiled_once_per_process(xsd_path: Path) -> None:
    assert load_ivi_schema(xsd_path) is load_ivi_schema(xsd_path)
    assert load_ivi_schema_unsigned(xsd_path) is load_ivi_schema_unsigned(xsd_path)
    assert load_ivi_schema(xsd_path) is not load_ivi_schema_unsigned(xsd_path)


def test_unsigned_schema_is_made_in_memory_without_writing_a_copy(xsd_path: Path) -> None:
    before = sorted(p.name for p in xsd_path.parent.iterdir())
    load_ivi_schema_unsigned(xsd_path)
    assert sorted(p.name for p in xsd_path.parent.iterdir()) == before


def test_schema_import_over_http_is_refused_not_fetched(tmp_path: Path) -> None:
    xsd = tmp_path / "remote-import.xsd"
    xsd.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:import namespace="urn:x" schemaLocation="http://192.0.2.1/x.xsd"/>'
        '<xs:element name="a" type="xs:string"/></xs:schema>'
    )

    with pytest.raises(XmlInputError, match=r"needs http://192\.0\.2\.1/x\.xsd; .* local files only"):
        load_ivi_schema(xsd)


def test_a_schema_whose_local_import_is_missing_names_the_file_it_needs(
    tmp_path: Path, xsd_path: Path
) -> None:
    alone = tmp_path / "IVI-2.0.xsd"
    alone.write_bytes(xsd_path.read_bytes())
    missing = (
        f"imports xmldsig-core-schema.xsd, which is not beside it ({tmp_path / 'xmldsig-core-schema.xsd'}"
    )
    for load in (load_ivi_schema, load_ivi_schema_unsigned, IviSchema.load):
        with pytest.raises(SchemaImportMissing, match=re.escape(missing)):
            load(alone)


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>',
        b'<?xml version="1.0"?>\n<!-- c --><!DOCTYPE a SYSTEM "http://192.0.2.1/a.dtd"><a/>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16"),
    ],
    ids=["internal-subset-with-entity", "external-dtd", "utf-16"],
)
def test_parse_bytes_refuses_a_document_carrying_a_dtd(document: bytes) -> None:
    with pytest.raises(XmlInputError, match="DTD"):
        parse_bytes(document)


def test_parse_bytes_accepts_doctype_text_inside_a_comment() -> None:
    root = parse_bytes(b"<a><!-- <!DOCTYPE a> --></a>")
    assert root.tag == "a"


def test_parse_bytes_names_line_and_column_of_malformed_xml() -> None:
    with pytest.raises(XmlInputError, match=r"line 2, column \d+"):
        parse_bytes(b"<a>\n<b></a>")


def test_parse_bytes_rejects_empty_input_clearly() -> None:
    with pytest.raises(XmlInputError, match="not well-formed XML"):
        parse_bytes(b"")


def test_parse_bytes_keeps_whitespace_so_signed_documents_round_trip() -> None:
    document = b"<a>\n\t<b> x </b>\n\t<c/>\n</a>"
    assert etree.tostring(parse_bytes(document)) == document
