"""XAdES baseline B as an option of the seal: signing time and signing certificate signed too."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from devkit.keys import generate_dev_seal
from services.signing.seal import Seal
from shared.xml import load_ivi_schema, parse_bytes, validate
from shared.xmldsig import XADES_NS, verify

pytestmark = pytest.mark.unit

XA = f"{{{XADES_NS}}}"
WHEN = dt.datetime(2026, 11, 30, 9, 15, 7, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def dev() -> tuple[bytes, bytes]:
    made = generate_dev_seal("rsa-2048")
    return made.key_pem, made.cert_pem


@pytest.fixture(scope="module")
def xades(dev: tuple[bytes, bytes], unsigned_specimen: bytes) -> bytes:
    return Seal.from_pem(*dev, format="xades-b").sign(unsigned_specimen, signing_time=WHEN)


def test_a_xades_seal_signs_its_time_and_certificate_and_verifies(
    xades: bytes, dev: tuple[bytes, bytes]
) -> None:
    result = verify(xades, dev[1])
    assert result.valid, result.reasons
    root = parse_bytes(xades)
    (props,) = root.iter(f"{XA}SignedProperties")
    assert props.findtext(f"{XA}SignedSignatureProperties/{XA}SigningTime") == "2026-11-30T09:15:07Z"
    references = root.findall(".//{http://www.w3.org/2000/09/xmldsig#}Reference")
    assert [r.get("URI") for r in references] == ["", "#ecoc-seal-signedprops"]


def test_a_xades_seal_is_valid_against_the_ivi_schema_as_published(xades: bytes, xsd_path: Path) -> None:
    assert validate(load_ivi_schema(xsd_path), parse_bytes(xades)) == []


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"2026-11-30T09:15:07Z", b"2026-11-29T09:15:07Z", "SignedProperties digest differs"),
        (
            b"<VehicleIdentificationNumber>JTAM1C0MPTEST0010",
            b"<VehicleIdentificationNumber>JTAM1C0MPTEST0011",
            "reference digest differs",
        ),
    ],
    ids=["signing-time", "content"],
)
def test_a_changed_signing_time_or_content_fails(xades: bytes, old: bytes, new: bytes, reason: str) -> None:
    assert xades.count(old) == 1
    result = verify(xades.replace(old, new))
    assert not result.valid and any(reason in r for r in result.reasons), result.reasons


def test_a_signing_certificate_property_naming_another_certificate_fails(xades: bytes) -> None:
    root = parse_bytes(xades)
    (value,) = root.iter(f"{XA}CertDigest")
    digest = value.find("{http://www.w3.org/2000/09/xmldsig#}DigestValue")
    assert digest is not None and digest.text
    forged = xades.replace(digest.text.encode(), b"A" * 43 + b"=")
    result = verify(forged)
    assert not result.valid  # the properties' digest and the certificate both disagree


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="make test installs xmlsec1")
def test_xmlsec1_verifies_a_xades_seal(xades: bytes, dev: tuple[bytes, bytes], tmp_path: Path) -> None:
    (tmp_path / "doc.xml").write_bytes(xades)
    (tmp_path / "seal.crt").write_bytes(dev[1])
    result = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--id-attr:Id",
            f"{XADES_NS}:SignedProperties",
            "--trusted-pem",
            str(tmp_path / "seal.crt"),
            str(tmp_path / "doc.xml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_plain_seal_stays_the_default_and_carries_no_xades(
    dev: tuple[bytes, bytes], unsigned_specimen: bytes
) -> None:
    plain = Seal.from_pem(*dev).sign(unsigned_specimen)
    assert XADES_NS.encode() not in plain
    assert etree.fromstring(plain).find(".//{http://www.w3.org/2000/09/xmldsig#}Object") is None
