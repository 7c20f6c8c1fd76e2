"""The local stack sealing XAdES baseline T: records wait while the TSA is away and are issued once it is back.

A private stack on ports of its own (Kafka 22092/22093, FerretDB 22017, services
22081-22088) with COC_SEAL_FORMAT=xades-t and a local TSA (``openssl ts`` behind the
small HTTP front of tests/unit/signing/test_xades_t.py) in this process. The TSA is
stopped while builds are published: no certificate is issued; started again: every
build is archived, each certificate with its timestamp, a sample passed by EU DSS 6.4
as XAdES-BASELINE-T.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import CertificateCheck, PrivateStack, own_stack, sample_run, show
from tests.unit.signing.test_dss import dss
from tests.unit.signing.test_xades_t import TSA_CONFIG, LocalTsa, tsa_certificate

pytestmark = pytest.mark.e2e

BUILDS = 60
WAIT_S = 20  # how long the TSA stays away while the builds are in the pipeline
OWN_PORTS = {
    "COC_KAFKA_BOOTSTRAP": "127.0.0.1:22092",
    "COC_KAFKA_CONTROLLER_PORT": "22093",
    "COC_MONGO_URL": "mongodb://127.0.0.1:22017",
    "COC_PORT_BASE": "22080",
}


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    folder = Path(tempfile.mkdtemp(prefix="coc-e2e-tsa-"))
    pem = tsa_certificate(folder)
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(TSA_CONFIG.format(folder=folder))
    local = LocalTsa(folder, pem)
    local.start()
    yield local
    if local.server is not None:
        local.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def t_stack(request: pytest.FixtureRequest, tsa: LocalTsa) -> Iterator[PrivateStack]:
    env = {
        **OWN_PORTS,
        "COC_SEAL_FORMAT": "xades-t",
        "COC_TSA_URL": tsa.url,
        "COC_TSA_TRUST": str(tsa.folder / "tsa.crt"),
        "COC_RETRY_MAX_S": "4",  # the stage tries again soon once the TSA is back
    }
    with own_stack(request, "XAdES-T", env) as stack:
        yield stack


async def test_records_wait_while_the_tsa_is_away_and_are_issued_with_a_timestamp_once_it_is_back(
    t_stack: PrivateStack, tsa: LocalTsa, tmp_path: Path
) -> None:
    run = sample_run(BUILDS, seed=3003, tag="T", defect_share=0.0)
    async with t_stack.client() as client:
        response = await client.post_approvals(run.approvals)
        assert response.status_code == 202, response.text
        expected = {b.vin: b.revision for b in run.builds}
        tsa.stop()
        try:
            async with client.watch(expected) as watch:
                await client.publish(run.builds)
                await asyncio.sleep(WAIT_S)  # the TSA stays away this long: nothing may be issued meanwhile
                waiting = await client.records(expected)
                issued = await client.certificates(expected)
                tsa.start()
                records = await client.settle(watch, expected, 300)
        finally:
            if tsa.server is None:
                tsa.start()
        certificates = await client.certificates(expected)
    states = {vin: (r or {}).get("state") for vin, r in waiting.items()}
    assert "archived" not in states.values() and "signed" not in states.values(), states
    assert {r.status_code for r in issued.values()} == {404}, "a certificate issued without its timestamp"
    assert {r["state"] for r in records.values()} == {"archived"}, records
    check = CertificateCheck.of(t_stack)
    problems = [p for vin, r in certificates.items() for p in check.in_process(vin, r.content)]
    problems += [vin for vin, r in certificates.items() if b"EncapsulatedTimeStamp" not in r.content]
    assert not problems, f"certificates without a valid seal or timestamp:{show(problems)}"
    vin = sorted(certificates)[0]
    report = dss(certificates[vin].content, check.seal_cert.read_bytes(), tmp_path, tsa.cert_pem)
    assert (report["format"], report["indication"]) == ("XAdES-BASELINE-T", "TOTAL_PASSED"), report
