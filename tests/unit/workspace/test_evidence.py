"""Release evidence and the readable certificate: what the record page shows about a signed document."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from lxml import etree

from devkit.keys import CERT_FILE, KEY_FILE, write_dev_seal
from services.signing.seal import Seal
from services.workspace.evidence import check, label, readable
from shared.xml import load_ivi_schema

pytestmark = pytest.mark.unit
VIN = b"JTAM1C0MPTEST0010"


@pytest.fixture(scope="module")
def schema(xsd_path: Path) -> etree.XMLSchema:
    return load_ivi_schema(xsd_path)


@pytest.fixture(scope="module")
def signed(unsigned_specimen: bytes, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    keys = tmp_path_factory.mktemp("seal")
    write_dev_seal(keys)
    seal = Seal.from_pem((keys / KEY_FILE).read_bytes(), (keys / CERT_FILE).read_bytes())
    return seal.sign(unsigned_specimen)


def test_a_sealed_certificate_as_archived_passes_every_check(signed: bytes, schema: etree.XMLSchema) -> None:
    now = dt.datetime.now(dt.UTC)
    result = check(signed, schema, hashlib.sha256(signed).hexdigest(), now)
    assert result.passed and result.schema_valid and result.seal_valid and result.sha256_as_archived
    assert result.signer_valid_when_sealed is True
    assert result.signer_fingerprint and len(result.signer_fingerprint) == 64
    assert result.signature_date == dt.date(2024, 2, 1)
    assert result.signer_subject and "CN=" in result.signer_subject


def test_a_seal_applied_outside_its_certificates_validity_fails(
    signed: bytes, schema: etree.XMLSchema
) -> None:
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    result = check(signed, schema, hashlib.sha256(signed).hexdigest(), long_ago)
    assert result.seal_valid and result.signer_valid_when_sealed is False and not result.passed


def test_a_changed_byte_fails_the_seal_and_the_archive_hash(signed: bytes, schema: etree.XMLSchema) -> None:
    archived = hashlib.sha256(signed).hexdigest()
    changed = signed.replace(VIN, b"JTAM1C0MPTEST0011")
    result = check(changed, schema, archived)
    assert not result.passed and not result.seal_valid and not result.sha256_as_archived
    assert any("digest" in reason for reason in result.seal_reasons)


def test_an_unsigned_document_fails_the_schema_as_published(
    unsigned_specimen: bytes, schema: etree.XMLSchema
) -> None:
    result = check(unsigned_specimen, schema, hashlib.sha256(unsigned_specimen).hexdigest())
    assert not result.schema_valid and not result.seal_valid and not result.passed


def test_bytes_that_are_not_xml_are_a_failed_check_not_an_error(schema: etree.XMLSchema) -> None:
    result = check(b"<not xml", schema, "")
    assert not result.passed and "not acceptable XML" in result.schema_errors[0]


def test_the_readable_certificate_groups_labelled_values_without_the_signature(signed: bytes) -> None:
    sections = readable(signed)
    titles = [s.title for s in sections]
    assert titles[:3] == ["Header", "Coc data group", "Signing authority"]
    values = dict(sections[1].rows)
    assert values["Vehicle identification number"] == VIN.decode()
    assert values["Maximum speed"] == "175"
    assert not any("Signature value" in label for s in sections for label, _ in s.rows)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("MaximumSpeed", "Maximum speed"),
        ("IviVersionNumber", "IVI version number"),
        ("WltpTotalCo2EmissionSavedDueEcoInnovation", "WLTP total CO2 emission saved due eco innovation"),
        ("VehicleCertified155Indicator", "Vehicle certified 155 indicator"),
    ],
)
def test_element_names_read_as_words(name: str, words: str) -> None:
    assert label(etree.Element(f"{{urn:x}}{name}")) == words
