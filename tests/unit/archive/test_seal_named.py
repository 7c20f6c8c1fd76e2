"""The evidence bundle and the audit name the seal a certificate was sealed with (holder, subject, serial, SHA-256)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from lxml import etree

from devkit.seals import holder_seal
from services.archive.audit import Auditor
from services.archive.evidence import bundle
from services.signing.seal import Seal
from shared.xml import load_ivi_schema
from shared.xmldsig import certificate_fingerprint
from tests.unit.archive.test_audit import row_of, vin_of

pytestmark = pytest.mark.unit
KAROO, MOPANI = "KAROO MOTOR WORKS (PTY) LTD", "MOPANI UTILITY VEHICLES (PTY) LTD"


def sealed_by(holder: str, unsigned: bytes) -> tuple[bytes, Any]:
    dev = holder_seal(holder)
    return Seal.from_pem(dev.key_pem, dev.cert_pem).sign(unsigned), dev.certificate


def test_the_bundle_manifest_names_the_seal_its_holder_subject_serial_and_fingerprint(
    unsigned_specimen: bytes,
) -> None:
    xml, certificate = sealed_by(MOPANI, unsigned_specimen)
    row = row_of(xml, vin_of(xml))
    approval = {
        "key": "K",
        "certificate": {"ManufacturerTable": {"ManufacturerGroup": [{"ManufacturerName": MOPANI}]}},
    }
    with zipfile.ZipFile(io.BytesIO(bundle(row, approval, [row], []))) as z:
        manifest = json.loads(next(z.read(n) for n in z.namelist() if n.endswith("manifest.json")))
    assert manifest["seal"] == {
        "holder": MOPANI,
        "subject": certificate.subject.rfc4514_string(),
        "serial": f"{certificate.serial_number:x}",
        "sha256": certificate_fingerprint(certificate),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }


def test_the_audit_counts_the_certificates_of_each_seal_it_found(
    unsigned_specimen: bytes, xsd_path: Any
) -> None:
    schema: etree.XMLSchema = load_ivi_schema(xsd_path)
    karoo, karoo_cert = sealed_by(KAROO, unsigned_specimen)
    mopani, mopani_cert = sealed_by(MOPANI, unsigned_specimen)
    auditor = Auditor(schema, [karoo_cert, mopani_cert], {"a" * 64: "a" * 64}.get)
    for xml in (karoo, mopani, mopani):
        assert auditor.certificate(row_of(xml, vin_of(xml))) == []
    counted = {used.subject: used.certificates for used in auditor.seals.values()}
    assert counted == {karoo_cert.subject.rfc4514_string(): 1, mopani_cert.subject.rfc4514_string(): 2}
