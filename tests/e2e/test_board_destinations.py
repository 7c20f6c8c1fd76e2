"""Readiness by destination in a real browser: the board's rows per country lead to the archived list.

Vehicles for Germany and the UK are published through the private stack and
archived; the board shows a row per destination, and a destination's archived
count opens the archived list searched by that country, where a search by the
plant's date and the vehicles' group finds exactly them.
"""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import eventually
from tests.e2e.browser import Person, add_person, axe_violations, new_context, screenshot, sign_in
from tests.e2e.helpers import PrivateStack, sample_run

pytestmark = pytest.mark.e2e
TIMEOUT = 180.0
PLANT = ZoneInfo("Africa/Johannesburg")  # the stack's COC_PLANT_TIMEZONE (the default)


@pytest.fixture(scope="module")
def viewer(pipeline: PrivateStack) -> Person:
    """A viewer of this module's own, made with `coc users add`."""
    return add_person(pipeline, "Dineo Destinations", "viewer")


async def listed_vins(page: Page) -> set[str]:
    found: list[str] = await page.locator("tr[data-vin]").evaluate_all("rows => rows.map(r => r.dataset.vin)")
    return set(found)


async def test_a_destinations_archived_count_opens_the_archived_list_of_that_country(
    pipeline: PrivateStack, browser: Browser, viewer: Person, request: pytest.FixtureRequest
) -> None:
    group = f"DS{time.time_ns() % 10**9}"  # this test's vehicles alone in their group
    run = sample_run(6, seed=2804, tag="D", defect_share=0.0)
    builds = [
        b.model_copy(update={"vehicle_group": group, "intended_country": "D" if n < 4 else "UK"})
        for n, b in enumerate(run.builds)
    ]
    records = await pipeline.publish_and_settle(builds, TIMEOUT)
    assert {record["state"] for record in records.values()} == {"archived"}
    german = {b.vin for b in builds if b.intended_country == "D"}
    assert all(records[vin]["country"] == "D" for vin in german)

    context = await new_context(browser)
    base = pipeline.url("workspace")
    page = await sign_in(context, base, viewer, "/")
    cell = page.locator('td[data-cell="country|D|archived"] a')

    async def counted() -> bool:
        if await cell.count() and int(await cell.inner_text()) >= len(german):
            return True
        await page.reload()
        return False

    await eventually(counted, within_s=30, every_s=1, what="Germany's archived count on the board")
    await expect(page.locator('tr[data-country="UK"]').first).to_be_visible()
    assert await axe_violations(page) == []

    # one more vehicle for Germany: the open board counts it live, without being loaded again
    shown = int(await cell.inner_text())
    more = sample_run(1, seed=2805, tag="E", defect_share=0.0).builds[0]
    more = more.model_copy(update={"vehicle_group": group, "intended_country": "D"})
    await pipeline.publish_and_settle([more], TIMEOUT)
    await expect(cell).to_have_text(str(shown + 1), timeout=30_000)
    german.add(more.vin)

    await cell.click()
    await page.wait_for_url("**/states/archived?country=D")
    await expect(page.locator("h1")).to_have_text("Archived certificates")
    await expect(page.locator("select#a-country")).to_have_value("D")
    today = dt.datetime.now(PLANT).date().isoformat()
    await page.locator("#a-from").fill(today)
    await page.locator("#a-to").fill(today)
    await page.locator("select#a-group").select_option(group)
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url("**/states/archived?*group=*")
    asked = parse_qs(urlparse(page.url).query)
    assert asked == {"archived_from": [today], "archived_to": [today], "country": ["D"], "group": [group]}
    assert await listed_vins(page) == german
    await expect(page.locator("#archived-count")).to_contain_text(
        f"{len(german)} vehicles archived from {today}"
    )
    assert all(text.endswith("SAST") for text in await page.locator("td.updated time").all_inner_texts())
    assert await axe_violations(page) == []
    await screenshot(page, request)
    await context.close()
