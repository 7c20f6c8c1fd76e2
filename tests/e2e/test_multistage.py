"""A multistage vehicle on the private stack: a completed (stage 2) vehicle built on an imported stage-1 certificate.

The chassis cab's certificate stands for what its manufacturer issued (sealed with a
seal of its own); the body builder imports it (`coc ivi import --base --store`), its
MES sends the completed vehicle's build with the previous stage, and the pipeline
renders, seals and archives the stage-2 certificate. A person finds it with the
record-type filter and reads its previous stage on the record page.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from devkit.keys import generate_dev_seal
from devkit.multistage import approvals, base_certificate, completed_build
from services.signing.seal import Seal
from shared.auth import Role
from shared.contracts.builds import PreviousStage
from shared.ivi import IviSchema
from tests.conftest import eventually
from tests.e2e.browser import Person, add_person, axe_violations, new_context, screenshot, sign_in
from tests.e2e.helpers import REVIEW_GROUP, CertificateCheck, PrivateStack

pytestmark = pytest.mark.e2e
TIMEOUT = 180.0


@pytest.fixture(scope="module")
def viewer(pipeline: PrivateStack) -> Person:
    """A viewer of this module's own, made with `coc users add`."""
    return add_person(pipeline, "Mira Multistage", "viewer")


def imported_base(stack: PrivateStack, schema: IviSchema, folder: Path) -> tuple[bytes, PreviousStage]:
    """The chassis cab's sealed certificate, imported as the body builder does: `coc ivi import --base --store`."""
    ford = generate_dev_seal()  # the first-stage manufacturer's own seal, not the stack's
    serial = 100_000 + time.time_ns() % 800_000  # a VIN of this run alone
    xml = base_certificate(Seal.from_pem(ford.key_pem, ford.cert_pem), schema, serial)
    source = folder / "chassis-cab.xml"
    source.write_bytes(xml)
    result = stack.coc("ivi", "import", "--base", str(source), "--store", "--out", str(folder))
    assert result.returncode == 0, f"coc ivi import --base: {result.stdout}{result.stderr}"
    assert "kept in the archive" in result.stdout and "not trusted" in result.stdout
    written = json.loads((folder / "previous_stage.json").read_text(encoding="utf-8"))
    return xml, PreviousStage.model_validate(written)


async def until_archived(stack: PrivateStack, vin: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        record = await stack.record(vin)
        return record if record and record["state"] == "archived" else None

    return await eventually(reached, within_s=TIMEOUT, every_s=0.5, what=f"{vin} archived")


async def until_listed(page: Page, url: str, vin: str) -> None:
    """Open ``url`` until its list shows ``vin`` (the archived list's index follows the status events)."""

    async def shown() -> str | None:
        await page.goto(url)
        return vin if await page.locator(f"tr[data-vin='{vin}']").count() == 1 else None

    found: str = await eventually(shown, within_s=30, every_s=1, what=f"{vin} listed at {url}")
    assert found == vin


async def test_a_completed_vehicle_on_an_imported_stage_one_certificate_renders_seals_and_is_found_by_record_type(
    pipeline: PrivateStack,
    browser: Browser,
    viewer: Person,
    schema: IviSchema,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    answer = await pipeline.post_approvals(approvals())
    assert answer.status_code == 202, answer.text
    base_xml, previous = imported_base(pipeline, schema, tmp_path)
    assert previous.sha256 == hashlib.sha256(base_xml).hexdigest() and previous.stage == 1

    stored = await pipeline.web.get(
        f"{pipeline.url('archive')}/v1/base-certificates/{previous.sha256}",
        headers=pipeline.auth(Role.VIEWER),
    )
    assert stored.status_code == 200 and stored.content == base_xml  # kept byte-exact

    # The body builder's MES sends the completed vehicle; its group waits for a reviewer, so the
    # record-type filter is seen on the list of records waiting for review before it is released.
    build = completed_build(previous, build_id=f"WD-{previous.vin[-6:]}").model_copy(
        update={"vehicle_group": REVIEW_GROUP}
    )
    records = await pipeline.publish_and_settle([build], TIMEOUT)
    record = records[build.vin]
    codes = [f["code"] for f in record["findings"]]  # no multistage finding: only the group's review
    assert (record["state"], record.get("record_type"), codes) == ("needs_review", "V", ["GROUP_REVIEW"]), (
        record
    )

    context = await new_context(browser)
    base = pipeline.url("workspace")
    page = await sign_in(context, base, viewer, "/states/needs_review?record_type=V")
    await expect(page.locator(f"tr[data-vin='{build.vin}']")).to_be_visible()
    await expect(page.locator("tr[data-vin] .rtype").first).to_have_text("V")
    await page.goto(f"{base}/states/needs_review?record_type=C")
    await expect(page.locator("h1")).to_be_visible()
    await expect(page.locator(f"tr[data-vin='{build.vin}']")).to_have_count(0)

    # The board, open while a reviewer releases it, moves it live among the completed vehicles from
    # needs review to archived (the only V vehicle of this stack); that count opens the archived list of V.
    await page.goto(f"{base}/")
    waiting = page.locator('td[data-cell="rtype|V|needs_review"]')

    async def counted() -> bool:
        if await waiting.locator("a").count():
            return True
        await page.reload()
        return False

    await eventually(counted, within_s=30, every_s=1, what="the board's completed vehicle waiting for review")
    await page.evaluate("window.boardNotReloaded = true")
    reviewed = await pipeline.post_review(build.vin, 1, "accept", "Rita Reviewer")
    assert reviewed.status_code == 202, reviewed.text
    await until_archived(pipeline, build.vin)
    completed = page.locator('td[data-cell="rtype|V|archived"] a')
    await expect(completed).to_have_attribute("href", "/states/archived?record_type=V", timeout=30_000)
    await expect(waiting).to_have_text("0", timeout=30_000)
    assert await page.evaluate("window.boardNotReloaded === true")  # moved live, not by loading again
    assert await axe_violations(page) == []
    await completed.click()
    await page.wait_for_url("**/states/archived?record_type=V")

    # The stage-2 certificate: the official schema as published and the stack's seal, checked in
    # process and by xmllint and xmlsec1; it restates stage 1 and names it as the previous stage.
    response = await pipeline.certificate(build.vin)
    assert response.status_code == 200
    checks = CertificateCheck.of(pipeline)
    assert checks.in_process(build.vin, response.content) == []
    saved = tmp_path / f"{build.vin}.xml"
    saved.write_bytes(response.content)
    assert checks.external([saved]) == []
    assert b"<StageOfCompletion>V</StageOfCompletion>" in response.content
    for element, value in (
        ("PreviousStageTypeApprovalNumber", previous.approval_number),
        ("PreviousStageType", previous.type),
        ("PreviousStageVariant", previous.variant),
        ("PreviousStageVersion", previous.version),
    ):
        assert f"<{element}>{value}</{element}>".encode() in response.content
    assert response.content.count(b"<ManufacturerStageNumber>") == 2

    # Archived, the archived list's record-type filter finds it under V and not under C.
    await until_listed(page, f"{base}/states/archived?record_type=V", build.vin)
    await expect(page.locator(f"tr[data-vin='{build.vin}'] .rtype")).to_have_text("V")
    await page.goto(f"{base}/states/archived?record_type=C")
    await expect(page.locator("#archived-count")).to_be_visible()
    await expect(page.locator(f"tr[data-vin='{build.vin}']")).to_have_count(0)

    # A person reads its previous stage on the record page and downloads the base certificate.
    await page.goto(f"{base}/records/{build.vin}")
    await expect(page.locator("[data-record-type='V']")).to_contain_text("completed vehicle")
    await expect(page.locator("[data-previous-reference]")).to_have_text(previous.reference_id)
    await expect(page.locator("[data-stage]")).to_contain_text(previous.approval_number)
    await expect(page.locator("[data-stage]")).to_contain_text(previous.manufacturer)
    await expect(page.locator("[data-check='passed']")).to_have_text("passed")
    async with page.expect_download() as download_info:
        await page.locator("[data-base-certificate]").click()
    downloaded = await (await download_info.value).path()
    assert Path(downloaded).read_bytes() == base_xml
    assert await axe_violations(page) == []
    await page.locator("[data-stage]").scroll_into_view_if_needed()
    await screenshot(page, request)
    await context.close()
