"""Words and times for people, in a real browser: the board and a record page say times in SAST, the readable
certificate says what its codes mean, and the rollout page tells its history in sentences."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from playwright.async_api import Browser, Page, expect

from services.workspace.words import when
from shared import codes
from shared.xml import IVI_NS
from tests.conftest import eventually
from tests.e2e.browser import Person, add_person, axe_violations, new_context, screenshot, sign_in
from tests.e2e.helpers import PrivateStack, sample_run

pytestmark = pytest.mark.e2e
TIMEOUT = 180.0
SAST = ZoneInfo("Africa/Johannesburg")  # the stack's plant zone: COC_PLANT_TIMEZONE left at its default
HUMAN = re.compile(r"^\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}, \d\d:\d\d SAST$")


@pytest.fixture(scope="module")
def lead(pipeline: PrivateStack) -> Person:
    """A compliance lead of this module's own, made with `coc users add`."""
    return add_person(pipeline, "Thandi Words", "compliance-lead")


async def times_on(page: Page, selector: str) -> list[tuple[str, str]]:
    """(datetime attribute, text) of every <time> the selector finds."""
    found: list[list[str]] = await page.locator(selector).evaluate_all(
        "nodes => nodes.map(t => [t.getAttribute('datetime'), t.textContent.trim()])"
    )
    return [(instant, text) for instant, text in found]


def read_in_sast(shown: list[tuple[str, str]]) -> None:
    """Each time reads in SAST, one format, and says the instant its datetime attribute holds."""
    assert shown, "no time shown"
    for instant, text in shown:
        assert HUMAN.match(text), text
        assert text == when(instant, SAST), (instant, text)


async def archived(stack: PrivateStack, vin: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        record = await stack.record(vin)
        return record if record and record["state"] == "archived" else None

    found: dict[str, Any] = await eventually(done, within_s=TIMEOUT, every_s=0.5, what=f"{vin} archived")
    return found


async def test_the_board_a_record_and_the_rollout_page_speak_sast_codes_with_meanings_and_sentences(
    pipeline: PrivateStack, browser: Browser, lead: Person, request: pytest.FixtureRequest
) -> None:
    group = f"WD{time.time_ns() % 10**9}"
    build, later = (
        b.model_copy(update={"vehicle_group": group})
        for b in sample_run(2, seed=2806, tag="S", defect_share=0.0).builds
    )
    await pipeline.publish([build])
    await archived(pipeline, build.vin)
    xml = (await pipeline.certificate(build.vin)).content

    context = await new_context(browser)
    base = pipeline.url("workspace")
    page = await sign_in(context, base, lead, "/")
    as_of = "time[data-count='as_of']"
    read_in_sast(await times_on(page, as_of))
    ((first, _),) = await times_on(page, as_of)
    assert abs(dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(first)) < dt.timedelta(minutes=10), first
    assert await axe_violations(page) == []

    # A live update (the board's script, no reload) says the new count's time the same way.
    await page.evaluate("window.__notReloaded = true")
    await pipeline.publish([later])
    await archived(pipeline, later.vin)

    async def counted_again() -> bool:
        return (await times_on(page, as_of))[0][0] != first

    await eventually(counted_again, within_s=TIMEOUT, every_s=0.5, what="the board counted again, live")
    read_in_sast(await times_on(page, as_of))
    assert await page.evaluate("window.__notReloaded") is True, "the board reloaded instead of updating"

    await page.goto(f"{base}/records/{build.vin}")
    read_in_sast(await times_on(page, "table.timeline time"))
    read_in_sast(await times_on(page, "table.revisions time"))
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", await page.locator("table.timeline").inner_text())
    root = etree.fromstring(xml)
    for element in ("IntendedCountryRegistration", "StageOfCompletion", "VehicleCategory"):
        code = root.findtext(f".//{{{IVI_NS}}}{element}")
        assert code, f"{element} not in the certificate"
        table = codes.table_of(element)
        assert table is not None
        meaning = codes.meaning(table.name, code)
        assert meaning, f"{element} {code} has no meaning in {table.name}"
        await expect(page.locator("table.values td", has_text=f"{code} — {meaning}").first).to_be_visible()
    assert await axe_violations(page) == []

    await page.goto(f"{base}/rollout")
    await page.get_by_label("New vehicle group").fill(f"{group}N")
    await page.get_by_label("Policy of the new group").select_option("review")
    await page.get_by_label("Why (new group)").fill("first batch")
    await page.get_by_role("button", name="Set policy of the new group").click()
    row = page.locator(f'tr[data-group="{group}N"]')
    await expect(row).to_contain_text(f"{lead.name} set group {group}N to review: ‘first batch’")
    await expect(page.locator("[data-default-policy]")).to_have_text("auto")
    await expect(page.locator(f'tr[data-group="{group}"] [data-set-by]')).to_contain_text(
        "COC_DEFAULT_RELEASE_POLICY"
    )
    read_in_sast(await times_on(page, f'tr[data-group="{group}N"] time'))
    assert await axe_violations(page) == []

    for path in ("/audit", "/sessions"):
        await page.goto(f"{base}{path}")
        read_in_sast(await times_on(page, "main table time"))
        assert await axe_violations(page) == [], path

    await page.goto(f"{base}/records/{build.vin}")
    await page.locator("a[href^='/approvals/']").first.click()
    read_in_sast(await times_on(page, "table.history time"))
    await expect(page.locator("table.values td", has_text=" — ").first).to_be_visible()
    assert await axe_violations(page) == []

    await page.goto(f"{base}/records/{build.vin}")
    await page.locator("details.code-sources summary").click()
    await screenshot(page, request)
    await context.close()
