"""A worklist in a real browser: next steps beside the findings, times in SAST, and its XLSX export."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import openpyxl
import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import eventually
from tests.e2e.browser import Person, add_person, axe_violations, new_context, screenshot, sign_in
from tests.e2e.helpers import PrivateStack, sample_run

pytestmark = pytest.mark.e2e
TIMEOUT = 180.0


@pytest.fixture(scope="module")
def viewer(pipeline: PrivateStack) -> Person:
    """A viewer of this module's own, made with `coc users add`: a viewer may export what it sees."""
    return add_person(pipeline, "Xola Exporter", "viewer")


async def shown_lines(page: Page) -> set[tuple[str, str]]:
    """(VIN, finding code) of every finding the page's table shows."""
    found: list[list[str]] = await page.locator("tr[data-vin]").evaluate_all(
        "rows => rows.flatMap(r => [...r.querySelectorAll('.findings li code')]"
        ".map(c => [r.dataset.vin, c.textContent.trim()]))"
    )
    return {(vin, code) for vin, code in found}


async def test_a_worklist_exported_as_xlsx_holds_the_rows_the_page_shows_whose_times_are_in_sast(
    pipeline: PrivateStack,
    browser: Browser,
    viewer: Person,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    group = f"WX{time.time_ns() % 10**9}"  # this test's records alone on the filtered worklist
    run = sample_run(12, seed=2801, tag="R", defect_share=0.6)
    builds = [b.model_copy(update={"vehicle_group": group}) for b in run.builds]
    records = await pipeline.publish_and_settle(builds, TIMEOUT)
    waiting = {
        (vin, f["code"])
        for vin, record in records.items()
        if record["state"] in ("blocked", "needs_review", "held")
        for f in record["findings"]
        if f["owner"] == "production"
    }
    assert waiting, "no build of the run waits for production"

    context = await new_context(browser)
    base = pipeline.url("workspace")
    page = await sign_in(context, base, viewer, f"/worklists/production?group={group}")

    async def all_listed() -> bool:
        if await shown_lines(page) == waiting:
            return True
        await page.reload()
        return False

    await eventually(all_listed, within_s=60, every_s=1, what=f"the production worklist of {group}")
    shown = await shown_lines(page)
    # the filters are choices of what exists (status's facets): this test's group among them, chosen
    await expect(page.locator("select#f-group")).to_have_value(group)
    codes = await page.locator("select#f-code option").all_inner_texts()
    assert {code for _, code in shown} <= set(codes)
    await expect(page.locator(".next-step").first).to_contain_text("Next step:")
    await expect(page.locator(".ask").first).to_contain_text("(production role)")
    times = await page.locator("td.updated time").all_inner_texts()
    assert len(times) == len({vin for vin, _ in shown})
    assert all(re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} SAST", t) for t in times), times
    assert await axe_violations(page) == []

    async with page.expect_download() as waiting_download:
        await page.get_by_role("link", name="XLSX").click()
    download = await waiting_download.value
    assert re.fullmatch(r"worklist-production-\d{8}T\d{4}Z\.xlsx", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    book = openpyxl.load_workbook(saved, read_only=True)
    rows = list(book["Records"].iter_rows(values_only=True))
    header = rows[0]
    vin, code, updated = header.index("VIN"), header.index("Finding code"), header.index("Updated")
    assert {(str(r[vin]), str(r[code])) for r in rows[1:]} == shown
    assert all(
        re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00", str(r[updated])) for r in rows[1:]
    )
    told = {row[0]: row[1] for row in book["About this export"].iter_rows(values_only=True)}
    assert told["Filters"] == f"group {group}" and told["Exported by"] == viewer.name

    # the archived list (helper D's page) exports the same way, with its search
    archived = {vin for vin, record in records.items() if record["state"] == "archived"}
    assert archived, "no build of the run was archived"

    async def archived_exported() -> set[str] | None:
        response = await page.request.get(f"{base}/states/archived/export?format=csv&group={group}")
        assert response.status == 200, await response.text()
        found = csv.reader(io.StringIO((await response.body()).decode("utf-8-sig")))
        vins = {line[0] for line in list(found)[1:]}
        return vins if vins == archived else None

    await eventually(archived_exported, within_s=30, every_s=1, what=f"the archived export of {group}")

    # a finding's code opens the catalogue at that code: its next step, whom to ask and the rule's source
    catalogue = await context.new_page()
    code = sorted(shown)[0][1]
    await catalogue.goto(f"{base}/findings#{code}")
    await expect(catalogue.locator(f'tr[id="{code}"]')).to_contain_text(code)
    assert await axe_violations(catalogue) == []
    await catalogue.close()
    await screenshot(page, request)
    await context.close()
