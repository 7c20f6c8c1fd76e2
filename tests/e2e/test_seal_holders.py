"""A seal per approval holder, and its rotation while the pipeline runs, on a stack of the module's own.

A private stack (Kafka 23092/23093, FerretDB 23017, services 23081-23088) whose
signing has the stack's development seal as KAROO's (COC_SEAL_HOLDER) and no other:

- a first run of 100 builds: KAROO's records are archived, MOPANI's wait, blocked
  with SEAL_MISSING on the integration worklist; ``coc seals add`` registers
  MOPANI's seal and they are sealed and archived without a resend;
- a run of 2,000 builds in which KAROO's seal is rotated (a new key and certificate
  registered with ``coc seals add``) once the first of them are archived: every
  certificate carries its holder's seal (KAROO's old or new one, MOPANI's), read
  from the X509Certificate of its signature; xmlsec1 verifies all of them with the
  three seal certificates as trust anchors; ``coc audit`` passes across the change
  and names the three seals; an evidence bundle names the seal of its certificate.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import time
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from playwright.async_api import Browser, expect

from devkit.seals import write_holder_seal
from shared.auth import Role
from shared.contracts.seals import holder_of
from shared.xml import DSIG_NS, parse_bytes
from shared.xmldsig import certificate_fingerprint, verify
from tests.conftest import eventually
from tests.e2e.browser import add_person, axe_violations, new_context, screenshot, sign_in
from tests.e2e.helpers import PrivateStack, SampleRun, own_stack, sample_run, say, show

pytestmark = pytest.mark.e2e

KAROO, MOPANI = "KAROO MOTOR WORKS (PTY) LTD", "MOPANI UTILITY VEHICLES (PTY) LTD"
FIRST, BUILDS = 100, int(os.environ.get("E2E_SEAL_BUILDS", "2000"))
ROTATE_AFTER = 100  # archived records of the big run before KAROO's new seal is registered
XMLSEC1_BATCH = 250  # files per xmlsec1 run: it verifies each and stops at the first that fails
OWN_PORTS = {
    "COC_KAFKA_BOOTSTRAP": "127.0.0.1:23092",
    "COC_KAFKA_CONTROLLER_PORT": "23093",
    "COC_MONGO_URL": "mongodb://127.0.0.1:23017",
    "COC_PORT_BASE": "23080",
}


@pytest.fixture(scope="module")
def seal_stack(request: pytest.FixtureRequest) -> Iterator[PrivateStack]:
    with own_stack(request, "seal holders", {**OWN_PORTS, "COC_SEAL_HOLDER": KAROO}) as stack:
        yield stack


def holders(run: SampleRun) -> dict[str, str]:
    """Each VIN's approval holder."""
    by_key = {approval.key: holder_of(approval) for approval in run.approvals}
    return {build.vin: str(by_key[build.approval.key]) for build in run.builds}


def sealed_with(certificate_xml: bytes) -> x509.Certificate:
    """The seal certificate in the signature's KeyInfo."""
    found = parse_bytes(certificate_xml).find(f".//{{{DSIG_NS}}}X509Certificate")
    assert found is not None and found.text
    return x509.load_der_x509_certificate(base64.b64decode("".join(found.text.split())))


def register(stack: PrivateStack, holder: str, name: str) -> Path:
    """A development seal for ``holder`` in the stack's state folder, registered with ``coc seals add``."""
    key, cert = write_holder_seal(stack.settings.state_dir / "holder-seals", holder, name)
    added = stack.coc(
        "seals", "add", holder, "--cert", str(cert), "--key-file", str(key), "--by", "e2e integration"
    )
    assert added.returncode == 0, f"coc seals add:\n{added.stdout}{added.stderr}"
    return cert


async def integration_worklist(stack: PrivateStack) -> set[str]:
    answer = await stack.web.get(
        f"{stack.url('status')}/v1/worklist",
        params={"owner": "integration", "code": "SEAL_MISSING", "size": 200},
        headers=stack.auth(Role.VIEWER),
    )
    assert answer.status_code == 200, f"worklist: {answer.status_code} {answer.text}"
    return {item["vin"] for item in answer.json()["items"]}


@pytest.fixture(scope="module")
async def first_run(seal_stack: PrivateStack) -> AsyncIterator[dict[str, Any]]:
    """100 builds with MOPANI's seal missing, then MOPANI's seal registered; what each phase showed."""
    async with seal_stack.client() as stack:
        run = sample_run(FIRST, seed=3101, tag="2", defect_share=0.0)
        assert (await stack.post_approvals(run.approvals)).status_code == 202
        holder = holders(run)
        waiting = {vin for vin, named in holder.items() if named == MOPANI}
        assert waiting and len(waiting) < FIRST
        before = await stack.publish_and_settle(run.builds, 300)
        worklist: set[str] = set()

        async def listed() -> bool:
            worklist.update(await integration_worklist(stack))
            return waiting <= worklist

        await eventually(
            listed, within_s=60, every_s=1.0, what="MOPANI's records on the integration worklist"
        )
        expected = {vin: 1 for vin in waiting}
        async with stack.watch(expected) as watch:
            mopani_cert = await asyncio.to_thread(register, stack, MOPANI, "mopani")
            after = await stack.settle(watch, expected, 180)
        yield {
            "run": run,
            "holder": holder,
            "waiting": waiting,
            "before": before,
            "worklist": worklist,
            "after": after,
            "mopani_cert": mopani_cert,
            "left_on_worklist": await integration_worklist(stack),
        }


def test_a_holder_without_a_seal_waits_on_the_integration_worklist_and_is_sealed_once_registered(
    first_run: dict[str, Any],
) -> None:
    before, waiting = first_run["before"], first_run["waiting"]
    blocked = {vin for vin, record in before.items() if record["state"] == "blocked"}
    assert blocked == waiting
    for vin in waiting:
        findings = {(f["code"], f["owner"], f["severity"]) for f in before[vin]["findings"]}
        assert findings == {("SEAL_MISSING", "integration", "error")}, (vin, before[vin])
    assert {vin for vin, r in before.items() if r["state"] == "archived"} == set(before) - waiting
    assert waiting <= first_run["worklist"]
    assert {r["state"] for r in first_run["after"].values()} == {"archived"}
    assert not waiting & first_run["left_on_worklist"]


async def test_the_seals_page_shows_the_settings_seal_serving_karoo_beside_mopanis_registered_one(
    seal_stack: PrivateStack, first_run: dict[str, Any], browser: Browser, request: pytest.FixtureRequest
) -> None:
    """The settings' seal (COC_SEAL_HOLDER KAROO's, from signing's GET /v1/seal) is a row of its own, reached
    by keyboard from the page's navigation, and the page has no serious accessibility violation."""
    viewer = add_person(seal_stack, "Sipho Seals", "viewer")
    default = x509.load_pem_x509_certificate(
        (seal_stack.settings.state_dir / "keys" / "seal.crt").read_bytes()
    )
    mopani = x509.load_pem_x509_certificate(first_run["mopani_cert"].read_bytes())
    context = await new_context(browser)
    try:
        page = await sign_in(context, seal_stack.url("workspace"), viewer, "/seals")
        own = page.locator("tr[data-settings-seal]")
        await expect(own.locator("[data-serves]")).to_have_text(
            f"serves {KAROO}, unless a seal of its own is registered"
        )
        await expect(own.locator("[data-fingerprint]")).to_have_text(certificate_fingerprint(default))
        registered = page.locator(f'tr[data-holder="{MOPANI}"]')
        await expect(registered.locator("[data-fingerprint]")).to_have_text(certificate_fingerprint(mopani))
        assert int(await own.locator("[data-days]").inner_text()) > 30
        assert await page.locator("p.error[role=alert]").count() == 0
        assert await axe_violations(page) == []
        for _ in range(20):  # by keyboard: from the top of the page to the Seals link, and it opens the page
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.getAttribute('href')") == "/seals":
                break
        else:
            pytest.fail("the Seals link was not reached by Tab")
        await page.keyboard.press("Enter")
        await expect(own).to_be_visible()
        await screenshot(page, request)
    finally:
        await context.close()


@pytest.fixture(scope="module")
async def rotated_run(seal_stack: PrivateStack, first_run: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """2,000 builds, KAROO's seal rotated once the first are archived; the certificates of both runs."""
    async with seal_stack.client() as stack:
        run = sample_run(BUILDS, seed=3102, tag="6", defect_share=0.0)
        assert (await stack.post_approvals(run.approvals)).status_code == 202
        expected = run.expected
        half = len(run.builds) // 2
        began = time.monotonic()
        async with stack.watch(expected) as watch:
            await stack.publish(run.builds[:half])

            async def some_archived() -> bool:
                return len(watch.archived) >= ROTATE_AFTER

            await eventually(
                some_archived, within_s=120, every_s=0.2, what=f"{ROTATE_AFTER} archived before the rotation"
            )
            new_karoo = await asyncio.to_thread(register, stack, KAROO, "karoo-2")
            say(f"KAROO's seal rotated with {len(watch.archived)} of {len(expected)} archived")
            await stack.publish(run.builds[half:])
            # The topic's word: the status API's read model lags a flood by up to a minute, and the
            # first test reads every certificate from the archive anyway.
            records = await stack.settle(watch, expected, 600, status_api=False)
        say(f"{len(expected)} builds settled in {time.monotonic() - began:.0f}s")
        states = Counter(record["state"] for record in records.values())
        assert states == Counter({"archived": len(expected)}), states
        everything = {**holders(first_run["run"]), **holders(run)}
        responses = await stack.certificates(everything)
        missing = [vin for vin, answer in responses.items() if answer.status_code != 200]
        assert not missing, f"certificates missing: {show(missing)}"
        evidence = await stack.web.get(
            f"{stack.url('archive')}/v1/evidence/{sorted(first_run['waiting'])[0]}",
            headers=stack.auth(Role.VIEWER),
        )
        yield {
            "holder": everything,
            "certificates": {vin: answer.content for vin, answer in responses.items()},
            "new_karoo": new_karoo,
            "evidence": evidence,
        }


def test_each_certificate_carries_its_holders_seal_and_karoos_rotation_left_no_gap(
    seal_stack: PrivateStack, first_run: dict[str, Any], rotated_run: dict[str, Any]
) -> None:
    state = seal_stack.settings.state_dir
    default = x509.load_pem_x509_certificate((state / "keys" / "seal.crt").read_bytes())
    mopani = x509.load_pem_x509_certificate(first_run["mopani_cert"].read_bytes())
    new_karoo = x509.load_pem_x509_certificate(rotated_run["new_karoo"].read_bytes())
    allowed = {
        KAROO: {certificate_fingerprint(default), certificate_fingerprint(new_karoo)},
        MOPANI: {certificate_fingerprint(mopani)},
    }
    used: Counter[str] = Counter()
    wrong = []
    for vin, data in rotated_run["certificates"].items():
        holder, fingerprint = rotated_run["holder"][vin], certificate_fingerprint(sealed_with(data))
        used[fingerprint] += 1
        if fingerprint not in allowed[holder]:
            wrong.append(f"{vin} of {holder} sealed by {sealed_with(data).subject.rfc4514_string()}")
    assert not wrong, f"certificates with another holder's seal: {show(wrong)}"
    assert used[certificate_fingerprint(default)] > 0 and used[certificate_fingerprint(new_karoo)] > 0, used
    assert "O=MOPANI UTILITY VEHICLES (PTY) LTD" in mopani.subject.rfc4514_string()


def test_every_certificate_verifies_with_our_verifier_and_xmlsec1_trusting_the_three_seals(
    seal_stack: PrivateStack, rotated_run: dict[str, Any], first_run: dict[str, Any], tmp_path: Path
) -> None:
    state = seal_stack.settings.state_dir
    anchors = [state / "keys" / "seal.crt", first_run["mopani_cert"], rotated_run["new_karoo"]]
    certificates = rotated_run["certificates"]
    problems = []
    for vin, data in certificates.items():
        # signxml's second opinion is left to xmlsec1 below; coc audit checks the schema of each.
        result = verify(data, second_opinion=False)
        if not result.valid:
            problems.append(f"{vin}: seal does not verify: {'; '.join(result.reasons)}")
    assert not problems, f"certificates that do not verify: {show(problems)}"
    files = []
    for vin, data in certificates.items():
        (tmp_path / f"{vin}.xml").write_bytes(data)
        files.append(str(tmp_path / f"{vin}.xml"))
    trusted = [arg for anchor in anchors for arg in ("--trusted-pem", str(anchor))]
    began = time.monotonic()
    for start in range(0, len(files), XMLSEC1_BATCH):
        batch = files[start : start + XMLSEC1_BATCH]
        checked = subprocess.run(
            ["xmlsec1", "--verify", *trusted, *batch],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert checked.returncode == 0, (
            f"xmlsec1 rejects one of {len(batch)}: {checked.stderr.strip()[-600:]}"
        )
        assert checked.stderr.count("\nOK\n") + checked.stderr.startswith("OK\n") == len(batch)
    say(f"xmlsec1 on {len(files)} certificates in {time.monotonic() - began:.0f}s")


def test_coc_audit_passes_across_the_rotation_and_names_each_seal_and_the_evidence_names_its_seal(
    seal_stack: PrivateStack, rotated_run: dict[str, Any], first_run: dict[str, Any], tmp_path: Path
) -> None:
    state = seal_stack.settings.state_dir
    trust = tmp_path / "trust"
    trust.mkdir()
    for name, anchor in (
        ("stack", state / "keys" / "seal.crt"),
        ("mopani", first_run["mopani_cert"]),
        ("karoo-2", rotated_run["new_karoo"]),
    ):
        (trust / f"{name}.pem").write_bytes(Path(anchor).read_bytes())
    seal_stack.env["COC_TRUST_DIR"] = str(trust)
    try:
        audited = seal_stack.coc("audit", "--json", timeout=600)
    finally:
        seal_stack.env.pop("COC_TRUST_DIR")
    assert audited.returncode == 0, f"coc audit:\n{audited.stdout[-3000:]}{audited.stderr[-2000:]}"
    report = json.loads(audited.stdout)
    assert report["breaks"] == [] and report["certificates"] == len(rotated_run["certificates"])
    assert (
        len(report["seals"]) == 3
        and sum(s["certificates"] for s in report["seals"]) == report["certificates"]
    )
    assert any("O=MOPANI UTILITY VEHICLES (PTY) LTD" in s["subject"] for s in report["seals"])
    answer = rotated_run["evidence"]
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as bundle:
        manifest = json.loads(next(bundle.read(n) for n in bundle.namelist() if n.endswith("manifest.json")))
    mopani = x509.load_pem_x509_certificate(first_run["mopani_cert"].read_bytes())
    assert manifest["seal"]["holder"] == MOPANI
    assert manifest["seal"]["sha256"] == certificate_fingerprint(mopani)
    assert manifest["seal"]["serial"] == f"{mopani.serial_number:x}"
