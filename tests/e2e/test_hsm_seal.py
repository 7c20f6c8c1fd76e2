"""The local stack in HSM mode: every certificate sealed through a SoftHSM2 token, and no key file anywhere.

A private stack on ports of its own (Kafka 21092/21093, FerretDB 21017, services
21081-21088, below the kernel's ephemeral range) started with COC_SEAL_PKCS11_MODULE set, so ``coc stack up`` makes the
development token in its state folder (``devkit.hsm``) and signing seals through it
(XAdES baseline B here, so EU DSS can pass it under its default policy). 500 builds
are archived; every certificate is checked by our verifier and by xmlsec1, a sample by
EU DSS 6.4 with the seal certificate as the only trust anchor.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devkit.hsm import SOFTHSM_MODULE
from shared.xmldsig import XADES_NS
from tests.e2e.helpers import CertificateCheck, PrivateStack, own_stack, sample_run, say, show
from tests.unit.signing.test_dss import dss

pytestmark = pytest.mark.e2e

BUILDS = int(os.environ.get("E2E_HSM_BUILDS", "500"))
DSS_SAMPLE = 2
XMLSEC1_XADES = ("xmlsec1", "--verify", "--id-attr:Id", f"{XADES_NS}:SignedProperties")
OWN_PORTS = {
    "COC_KAFKA_BOOTSTRAP": "127.0.0.1:21092",
    "COC_KAFKA_CONTROLLER_PORT": "21093",
    "COC_MONGO_URL": "mongodb://127.0.0.1:21017",
    "COC_PORT_BASE": "21080",
}


@pytest.fixture(scope="module")
def hsm_stack(request: pytest.FixtureRequest) -> Iterator[PrivateStack]:
    """``coc stack up`` in HSM mode on its own ports and state; ``coc stack down`` at the end."""
    env = {**OWN_PORTS, "COC_SEAL_PKCS11_MODULE": str(SOFTHSM_MODULE), "COC_SEAL_FORMAT": "xades-b"}
    with own_stack(request, "HSM", env) as stack:
        yield stack


@pytest.fixture(scope="module")
async def archived(hsm_stack: PrivateStack) -> AsyncIterator[tuple[PrivateStack, dict[str, bytes]]]:
    """The approvals loaded, 500 clean builds published and settled; their certificates."""
    async with hsm_stack.client() as client:
        run = sample_run(BUILDS, seed=3001, tag="H", defect_share=0.0)
        response = await client.post_approvals(run.approvals)
        assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
        began = time.monotonic()
        records = await client.publish_and_settle(run.builds, 600)
        say(f"{len(run.builds)} builds settled in {time.monotonic() - began:.0f}s")
        states = {vin: r["state"] for vin, r in records.items()}
        assert set(states.values()) == {"archived"}, show([f"{v}: {s}" for v, s in states.items()])
        responses = await client.certificates(records)
        missing = [f"{vin}: {r.status_code}" for vin, r in responses.items() if r.status_code != 200]
        assert not missing, f"certificates missing:{show(missing)}"
        yield client, {vin: r.content for vin, r in responses.items()}


async def test_every_certificate_sealed_through_the_token_verifies_with_our_verifier_and_xmlsec1(
    archived: tuple[PrivateStack, dict[str, bytes]], tmp_path: Path
) -> None:
    stack, certificates = archived
    hsm = stack.settings.state_dir / "hsm"
    own = CertificateCheck.of(stack)
    check = CertificateCheck(own.xsd, hsm / "seal.crt", own.schema)
    assert len(certificates) == BUILDS
    problems = [problem for vin, data in certificates.items() for problem in check.in_process(vin, data)]
    assert not problems, f"certificates that do not verify:{show(problems)}"
    began = time.monotonic()
    for vin, data in certificates.items():
        (tmp_path / f"{vin}.xml").write_bytes(data)
        # xmlsec1 trusts the development CA that issued the token's certificate; the XAdES
        # SignedProperties are referenced by their Id.
        checked = subprocess.run(
            [*XMLSEC1_XADES, "--trusted-pem", str(hsm / "seal-ca.crt"), str(tmp_path / f"{vin}.xml")],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if checked.returncode != 0:
            problems.append(f"xmlsec1 rejects {vin}: {checked.stderr.strip()[-300:]}")
    say(f"xmlsec1 on {len(certificates)} certificates in {time.monotonic() - began:.0f}s")
    assert not problems, f"xmlsec1 rejects certificates:{show(problems)}"


async def test_eu_dss_passes_a_sample_of_the_token_sealed_certificates_as_xades_baseline_b(
    archived: tuple[PrivateStack, dict[str, bytes]], tmp_path: Path
) -> None:
    stack, certificates = archived
    # The seal certificate itself is the anchor: DSS asks no revocation data of a trusted certificate
    # (with only the development CA trusted it finds no CRL or OCSP for the seal and stays INDETERMINATE).
    anchor = (stack.settings.state_dir / "hsm" / "seal.crt").read_bytes()
    vins = sorted(certificates)
    for vin in vins[:: max(1, len(vins) // DSS_SAMPLE)][:DSS_SAMPLE]:
        folder = tmp_path / vin
        folder.mkdir()
        report = dss(certificates[vin], anchor, folder)
        assert (report["format"], report["indication"]) == ("XAdES-BASELINE-B", "TOTAL_PASSED"), (vin, report)


def test_no_private_key_file_exists_in_the_state_folder_in_hsm_mode(
    archived: tuple[PrivateStack, dict[str, bytes]],
) -> None:
    stack, _certificates = archived
    state = stack.settings.state_dir
    assert not (state / "keys" / "seal.key").exists()
    pem_keys = [
        str(path.relative_to(state))
        for path in state.rglob("*")
        if path.is_file() and path.stat().st_size < 1_000_000 and b"PRIVATE KEY-----" in path.read_bytes()
    ]
    assert pem_keys == [], f"private key files in HSM mode: {pem_keys}"
    assert (state / "hsm" / "tokens").is_dir()  # the key is in the token's store, sealed by SoftHSM2
    logs = b"".join(p.read_bytes() for p in (state / "logs").glob("*.log"))
    assert (state / "hsm" / "user.pin").read_bytes().strip() not in logs  # the PIN is never logged
