"""A type-approval person brings approval data in through the workspace: dry run, diff, impact, publish."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.async_api import Browser, Page, expect

from shared.contracts import Approval, BuildRecord
from tests.conftest import eventually
from tests.e2e.browser import Person, add_person, axe_violations, new_context, screenshot, sign_in
from tests.e2e.helpers import PrivateStack, describe, sample_run

pytestmark = pytest.mark.e2e
TIMEOUT = 180.0
SPEED = "CocDataGroup/MaximumSpeed"


@pytest.fixture(scope="module")
def type_approval(pipeline: PrivateStack) -> Person:
    """A type-approval engineer of this module's own, made with `coc users add`."""
    return add_person(pipeline, "Thandi Nkosi", "type-approval")


async def settled(stack: PrivateStack, vin: str, state: str, code: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] | None = None

    async def reached() -> dict[str, Any] | None:
        nonlocal record
        record = await stack.record(vin)
        codes = [f["code"] for f in (record or {}).get("findings", [])]
        return record if record and record["state"] == state and (code is None or code in codes) else None

    try:
        return await eventually(reached, within_s=TIMEOUT, every_s=0.5, what=f"{vin} {state}")
    except AssertionError:
        raise AssertionError(f"{vin} not {state}: {describe(record)}") from None


def on(build: BuildRecord, approval: Approval) -> BuildRecord:
    ref = build.approval.model_copy(update={"version": approval.version})
    return build.model_copy(update={"approval": ref})


def filled(template: bytes, approvals: list[Approval]) -> bytes:
    """The downloaded template filled in as a person would: one row per approval, a column added where needed."""
    from services.workspace.upload.columns import cells

    book = load_workbook(io.BytesIO(template))
    sheet = book["Approvals"]
    header = [cell.value for cell in sheet[1]]
    for approval in approvals:
        row = cells(approval)
        for name in row:
            if name not in header:
                header.append(name)
                sheet.cell(1, len(header), name)
        sheet.append([row.get(name, "") for name in header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_speed(approval: Approval, speed: str) -> Approval:
    tree = json.loads(json.dumps(approval.certificate))
    tree["MaximumSpeed"] = speed
    return approval.model_copy(update={"certificate": tree})


async def check_file(page: Page, path: Path) -> None:
    await page.locator("input[type=file]").set_input_files(str(path))
    await page.get_by_role("button", name="Check the file (dry run)").click()
    await page.wait_for_url("**/approvals/upload/*")


async def test_a_type_approval_person_uploads_a_sheet_fixes_its_bad_row_and_publishes_under_their_name(
    pipeline: PrivateStack,
    browser: Browser,
    type_approval: Person,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    run = sample_run(12, seed=2802, tag="U", defect_share=0.0)
    first, second = [b for b in run.builds if b.approval.key == run.builds[0].approval.key][:2]
    base_approval = next(a for a in run.approvals if a.key == first.approval.key)
    suffix = f"-U{time.time_ns() % 10**6}"
    kept = base_approval.model_copy(update={"version": base_approval.version + suffix + "K"})
    fresh = base_approval.model_copy(update={"version": base_approval.version + suffix + "N"})
    assert (await pipeline.post_approvals([kept])).status_code == 202
    archived, waiting = on(first, kept), on(second, fresh)
    await pipeline.publish([archived])
    await settled(pipeline, archived.vin, "archived")
    await pipeline.publish([waiting])
    await settled(pipeline, waiting.vin, "blocked", "APPROVAL_UNKNOWN")

    context = await new_context(browser)
    base = pipeline.url("workspace")
    page = await sign_in(context, base, type_approval, "/approvals")
    await page.get_by_role("link", name="Upload approval data").click()
    await page.wait_for_url(f"{base}/approvals/upload")
    assert await axe_violations(page) == []
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Download the template (XLSX)").click()
    template = Path(await (await download.value).path()).read_bytes()

    old_speed = kept.certificate["MaximumSpeed"]
    new_speed = str(int(old_speed) + 1)
    bad = tmp_path / "approvals-bad.xlsx"
    bad.write_bytes(filled(template, [with_speed(kept, new_speed), with_speed(fresh, "fast")]))
    await check_file(page, bad)
    error = page.locator('tr[data-row="3"]')
    await expect(error).to_contain_text(SPEED)
    await expect(error).to_contain_text("IVI 2.0 schema")
    await expect(page.locator("input[name=digest]")).to_have_count(0)
    assert await axe_violations(page) == []

    fixed = tmp_path / "approvals-fixed.xlsx"
    fixed.write_bytes(filled(template, [with_speed(kept, new_speed), fresh]))
    await check_file(page, fixed)
    change = page.locator(f'section[data-key="{kept.key}"] tr[data-path="{SPEED}"] td')
    await expect(change).to_have_text([old_speed, new_speed])
    await expect(page.locator(f'section[data-key="{fresh.key}"] [data-new]')).to_have_count(1)
    await expect(page.locator(f'li[data-impact="{kept.key}"] [data-archived]')).to_have_attribute(
        "data-archived", "1"
    )
    await expect(page.locator(f'li[data-impact="{fresh.key}"] [data-waiting]')).to_have_attribute(
        "data-waiting", "1"
    )
    assert await axe_violations(page) == []

    await page.get_by_label("Why", exact=False).focus()  # by keyboard: type the reason, Enter publishes
    await page.keyboard.type("maximum speed corrected; new version for the export line")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/approvals/upload?published=2")
    await expect(page.get_by_role("status")).to_contain_text("2 approvals published under your name")

    await settled(pipeline, waiting.vin, "archived")
    await page.goto(f"{base}/approvals/{fresh.key}")
    await expect(page.locator("td[data-by]").first).to_contain_text(f"{type_approval.name} published")
    await page.goto(f"{base}/approvals/{kept.key}")
    await expect(page.locator("td[data-by]").first).to_contain_text(f"{type_approval.name} changed 1 field")
    assert await axe_violations(page) == []
    await screenshot(page, request)
    await context.close()
