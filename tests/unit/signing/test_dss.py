"""The EU DSS reference validator (6.4, offline, the development certificate as the only anchor) on our seals.

Built by ``make dss`` (``make test`` does it): tests/dss/pom.xml for the jars,
tests/dss/DssCheck.java for the checker, into .cache/dss.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devkit.keys import generate_dev_seal
from services.signing.seal import Seal

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
DSS = ROOT / ".cache" / "dss"


def dss(document: bytes, anchor: bytes, tmp_path: Path, *more_anchors: bytes) -> dict[str, str]:
    if not (DSS / "classes" / "DssCheck.class").exists() or shutil.which("java") is None:
        pytest.fail("the DSS checker is not built: run `make dss` (make test does)")
    (tmp_path / "signed.xml").write_bytes(document)
    anchors = []
    for i, pem in enumerate((anchor, *more_anchors)):
        anchors.append(tmp_path / f"anchor{i}.pem")
        anchors[-1].write_bytes(pem)
    result = subprocess.run(
        [
            "java",
            "-cp",
            f"{DSS / 'classes'}:{DSS / 'lib'}/*",
            "DssCheck",
            str(tmp_path / "signed.xml"),
            *map(str, anchors),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(line.split("=", 1) for line in result.stdout.split())


@pytest.fixture(scope="module")
def dev() -> tuple[bytes, bytes]:
    made = generate_dev_seal("rsa-2048")
    return made.key_pem, made.cert_pem


def test_dss_finds_a_plain_seal_intact_valid_and_trusted(
    dev: tuple[bytes, bytes], unsigned_specimen: bytes, tmp_path: Path
) -> None:
    report = dss(Seal.from_pem(*dev).sign(unsigned_specimen), dev[1], tmp_path)
    assert (report["intact"], report["valid"], report["trusted"]) == ("true", "true", "true")
    # Plain XML-DSig, as the EUCARIS set-up manual requires: not an ETSI format, and no signing
    # time, which DSS's default policy wants: INDETERMINATE, never failed.
    assert report["format"] == "XML-NOT-ETSI" and report["indication"] != "TOTAL_FAILED"


def test_dss_passes_a_xades_baseline_b_seal_under_its_default_policy(
    dev: tuple[bytes, bytes], unsigned_specimen: bytes, tmp_path: Path
) -> None:
    report = dss(Seal.from_pem(*dev, format="xades-b").sign(unsigned_specimen), dev[1], tmp_path)
    assert (report["format"], report["indication"]) == ("XAdES-BASELINE-B", "TOTAL_PASSED")


def test_dss_fails_a_seal_whose_certificate_was_swapped_for_another(
    dev: tuple[bytes, bytes], unsigned_specimen: bytes, tmp_path: Path
) -> None:
    sealed = Seal.from_pem(*dev, format="xades-b").sign(unsigned_specimen)
    other = generate_dev_seal("rsa-2048")

    def der_b64(pem: bytes) -> bytes:
        return base64.b64encode(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER))

    assert sealed.count(der_b64(dev[1])) == 1
    tampered = sealed.replace(der_b64(dev[1]), der_b64(other.cert_pem))
    report = dss(tampered, dev[1], tmp_path)
    assert report["indication"] != "TOTAL_PASSED"
    assert report["valid"] == "false" or report["trusted"] == "false"


def test_dss_fails_a_seal_whose_content_changed(
    dev: tuple[bytes, bytes], unsigned_specimen: bytes, tmp_path: Path
) -> None:
    sealed = Seal.from_pem(*dev, format="xades-b").sign(unsigned_specimen)
    changed = sealed.replace(b"<ActualMass>1547</ActualMass>", b"<ActualMass>1447</ActualMass>")
    assert changed != sealed
    report = dss(changed, dev[1], tmp_path)
    assert (report["indication"], report["intact"]) == ("TOTAL_FAILED", "false")
