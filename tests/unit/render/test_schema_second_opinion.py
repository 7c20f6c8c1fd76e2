"""A second opinion on the official schema: xmlschema (pure Python) beside lxml (libxml2).

Every schema check of the product goes through libxml2. Two implementations that
read the same XSD independently must agree: on the official specimen, on a
certificate we render and seal, and on documents broken in known ways. Should a
libxml2 upgrade (or our in-memory edit of the schema) start to accept what the
schema forbids, or refuse what it allows, these tests say so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from devkit.keys import generate_dev_seal
from devkit.samples import generate
from services.render.document import render
from services.signing.seal import FORMATS, Seal
from services.validation.rules import ApprovalTable
from shared.ivi import IviSchema
from shared.xml import load_ivi_schema, parse_bytes, validate

pytestmark = pytest.mark.unit

DSIG = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def second_opinion(xsd_path: Path) -> xmlschema.XMLSchema:
    """The published XSD as xmlschema reads it, its import from local files only (never the network)."""
    return xmlschema.XMLSchema(str(xsd_path), allow="local")


@pytest.fixture(scope="module")
def published(xsd_path: Path) -> etree.XMLSchema:
    return load_ivi_schema(xsd_path)


def _opinions(
    document: bytes, published: etree.XMLSchema, second_opinion: xmlschema.XMLSchema
) -> tuple[list[str], list[str]]:
    """Each implementation's complaints about ``document``: lxml's messages, xmlschema's paths and reasons."""
    root = parse_bytes(document)
    by_lxml = validate(published, root)
    by_xmlschema = [f"{error.path}: {error.reason}" for error in second_opinion.iter_errors(root)]
    return by_lxml, by_xmlschema


def test_both_readings_of_the_schema_accept_the_official_specimen(
    specimen_bytes: bytes, published: etree.XMLSchema, second_opinion: xmlschema.XMLSchema
) -> None:
    assert _opinions(specimen_bytes, published, second_opinion) == ([], [])


@pytest.mark.parametrize("seal_format", [f for f in FORMATS if f != "xades-t"])  # T needs a TSA: e2e
def test_both_readings_accept_certificates_we_render_and_seal(
    seal_format: str,
    schema: IviSchema,
    published: etree.XMLSchema,
    second_opinion: xmlschema.XMLSchema,
) -> None:
    dev_seal = generate_dev_seal()
    seal = Seal.from_pem(dev_seal.key_pem, dev_seal.cert_pem, format=seal_format)
    samples = generate(12, seed=26, defect_share=0.0)
    table = ApprovalTable.of(schema, samples.approvals)
    categories: set[str] = set()
    for build in samples.builds:
        approval = table.get(build.approval.key)
        assert approval is not None
        categories.add(approval.category)
        sealed = seal.sign(render(build, approval, version_number=1, schema=schema))
        assert _opinions(sealed, published, second_opinion) == ([], []), build.vin
    assert len(categories) > 1, "the samples should cover more than one vehicle category"


BREAKS = {
    "an IviReferenceId that is not a version 4 UUID": (
        b"6a2957d3-4a32-41a6",
        b"6a2957d3-4a32-11a6",
        "IviReferenceId",
    ),
    "a MaximumSpeed that is not a number": (b"<MaximumSpeed>175<", b"<MaximumSpeed>fast<", "MaximumSpeed"),
    "an element the schema does not declare": (
        b"<IviVersionNumber>1</IviVersionNumber>",
        b"<IviVersionNumber>1</IviVersionNumber><Colour>pink</Colour>",
        "Colour",
    ),
    "the signature in another namespace": (
        f'<Signature xmlns="{DSIG}">'.encode(),
        b'<Signature xmlns="urn:not-xmldsig">',
        "Signature",
    ),
}


@pytest.mark.parametrize("break_name", BREAKS)
def test_both_readings_refuse_a_specimen_broken_in_a_known_way_and_name_the_element(
    break_name: str,
    specimen_bytes: bytes,
    published: etree.XMLSchema,
    second_opinion: xmlschema.XMLSchema,
) -> None:
    old, new, element = BREAKS[break_name]
    assert specimen_bytes.count(old) == 1, "the break must touch exactly one place of the specimen"

    by_lxml, by_xmlschema = _opinions(specimen_bytes.replace(old, new), published, second_opinion)

    assert by_lxml and element in by_lxml[0], by_lxml
    assert by_xmlschema and element in by_xmlschema[0], by_xmlschema


def test_both_readings_refuse_a_certificate_without_its_signature_as_the_schema_is_published(
    unsigned_specimen: bytes, published: etree.XMLSchema, second_opinion: xmlschema.XMLSchema
) -> None:
    by_lxml, by_xmlschema = _opinions(unsigned_specimen, published, second_opinion)

    assert len(by_lxml) == 1 and "Signature" in by_lxml[0], by_lxml
    assert len(by_xmlschema) == 1 and "Signature" in by_xmlschema[0], by_xmlschema
