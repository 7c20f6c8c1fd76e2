"""The workspace in a real browser (Chromium via Playwright) on the private stack, as its people use it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Error, Page, expect

from shared.auth import Role
from tests.conftest import eventually
from tests.e2e.browser import (
    Person,
    add_people,
    axe_violations,
    new_context,
    screenshot,
    sign_in,
)
from tests.e2e.helpers import REVIEW_GROUP, PrivateStack, clean_twin, describe, sample_run

pytestmark = pytest.mark.e2e
TIMEOUT = 180.0
XMLLINT, XMLSEC1 = shutil.which("xmllint"), shutil.which("xmlsec1")


@pytest.fixture(scope="session")
def people(pipeline: PrivateStack) -> dict[str, Person]:
    return add_people(pipeline)


@pytest.fixture(scope="session")
def base(pipeline: PrivateStack) -> str:
    return pipeline.url("workspace")


async def readiness(stack: PrivateStack) -> dict[str, Any]:
    response = await stack.web.get(f"{stack.url('status')}/v1/readiness", headers=stack.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def until(stack: PrivateStack, vin: str, state: str, revision: int = 1) -> dict[str, Any]:
    record: dict[str, Any] | None = None

    async def reached() -> dict[str, Any] | None:
        nonlocal record
        record = await stack.record(vin)
        return record if record and record["state"] == state and record["revision"] == revision else None

    try:
        return await eventually(reached, within_s=TIMEOUT, every_s=0.5, what=f"{vin} {state}")
    except AssertionError:
        raise AssertionError(f"{vin} not {state} at revision {revision}: {describe(record)}") from None


def unique_group(prefix: str) -> str:
    """A vehicle group of one test: a filtered worklist then shows its records alone."""
    return f"{prefix}{time.time_ns() % 10**9}"


async def open_page(page: Page, url: str) -> None:
    """Go to ``url``; again if the record page's own live reload (it reloads when its record changes) interrupts."""

    async def opened() -> bool:
        try:
            await page.goto(url)
        except Error as exc:
            if "interrupted by another navigation" not in str(exc):
                raise
            return False
        return True

    await eventually(opened, within_s=30, every_s=1, what=f"{url} opened")


async def listed_vins(page: Page) -> set[str]:
    found: list[str] = await page.locator("tr[data-vin]").evaluate_all("rows => rows.map(r => r.dataset.vin)")
    return set(found)


async def until_listed(page: Page, vin: str, listed: bool, timeout: float = 60.0) -> None:
    """Reload the worklist until ``vin`` is on it (or gone): the status service's view follows the fold."""

    async def as_wanted() -> bool:
        if (await page.locator(f'tr[data-vin="{vin}"]').count() > 0) == listed:
            return True
        await page.reload()
        return False

    what = f"{vin} {'listed' if listed else 'gone'} on {page.url}"
    await eventually(as_wanted, within_s=timeout, every_s=1, what=what)


async def board_cells(page: Page) -> dict[str, str]:
    found: dict[str, str] = await page.eval_on_selector_all(
        "[data-cell]", "cells => Object.fromEntries(cells.map(c => [c.dataset.cell, c.textContent.trim()]))"
    )
    return found


async def test_a_signed_out_visitor_is_sent_to_sign_in_and_then_to_the_page_asked_for(
    browser: Browser, base: str, people: dict[str, Person], request: pytest.FixtureRequest
) -> None:
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(f"{base}/worklists/production?group=NONE")
    assert "/signin?next=" in page.url
    assert await axe_violations(page) == []

    await page.get_by_label("Name").fill(people["production"].name)
    await page.get_by_label("Password").fill("not the password at all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Name or password is wrong")
    await page.get_by_label("Password").fill(people["production"].password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Too many wrong passwords")  # slowed down
    # How long the wait lasts is tested on a fake clock (tests/unit/workspace); here the person tries again.

    async def signed_in() -> bool:
        await page.get_by_label("Password").fill(people["production"].password)
        async with page.expect_navigation():  # the form again (429) or the page asked for
            await page.get_by_role("button", name="Sign in").click()
        return page.url == f"{base}/worklists/production?group=NONE"

    await eventually(signed_in, within_s=10, every_s=0.25, what="signing in once the throttle lets go")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Production worklist")
    await screenshot(page, request)
    await context.close()


async def test_the_board_shows_the_read_models_counts_and_follows_new_builds_live(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    people: dict[str, Person],
    request: pytest.FixtureRequest,
) -> None:
    context = await new_context(browser)
    page = await sign_in(context, base, people["viewer"], "/")
    model = await readiness(pipeline)
    cells = await board_cells(page)
    for group, counts in model["by_group"].items():
        for state, count in counts.items():
            assert cells[f"{group}|{state}"] == str(count), (group, state)
    assert await page.text_content('[data-count="total"]') == str(model["total"])
    assert await page.title() == "Readiness · eCoC workspace"
    # Deliveries of earlier tests' certificates may still move: the page and the read model agree
    # once both are read again (the page follows live).
    kinds = ("delivery_queued", "submitted", "delivery_retrying", "delivered", "delivery_rejected")

    async def deliveries_agree() -> bool:
        counted = (await readiness(pipeline))["delivery_by_state"]
        shown = {k: (await page.text_content(f'[data-count="delivery-{k}"]') or "").strip() for k in kinds}
        return shown == {k: str(counted.get(k, 0)) for k in kinds}

    await eventually(deliveries_agree, within_s=TIMEOUT, every_s=1, what="the board's deliveries match")
    assert await axe_violations(page) == []

    await page.evaluate("window.__notReloaded = true")
    builds = sample_run(8, seed=401, tag="L", defect_share=0.0).builds
    await pipeline.publish(list(builds))
    wanted = model["total"] + len(builds)

    async def total_reached() -> bool:
        # Read from here, not by wait_for_function: its string runs through eval(), which the
        # workspace's Content-Security-Policy refuses.
        return int((await page.text_content('[data-count="total"]') or "0").strip()) >= wanted

    await eventually(
        total_reached, within_s=TIMEOUT, every_s=0.5, what=f"the board's total reaching {wanted}"
    )
    for build in builds:
        await until(pipeline, build.vin, "archived")
    # The page ends on the read model's count (its answer is shared for two seconds, so both are
    # read again until they agree).

    async def archived_agrees() -> bool:
        archived_total = str((await readiness(pipeline))["by_state"]["archived"])
        return (await page.text_content('[data-cell="total|archived"]') or "").strip() == archived_total

    await eventually(archived_agrees, within_s=TIMEOUT, every_s=1, what="the board's archived total matches")
    assert await page.evaluate("window.__notReloaded") is True, "the board reloaded instead of updating"
    await screenshot(page, request)
    await context.close()


async def test_each_count_of_the_board_opens_the_list_of_the_records_behind_it(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    people: dict[str, Person],
    request: pytest.FixtureRequest,
) -> None:
    group = unique_group("WL")
    run = sample_run(16, seed=405, tag="K", defect_share=0.5)
    builds = [b.model_copy(update={"vehicle_group": group}) for b in run.builds]
    async with pipeline.watch(run.expected) as watch:
        await pipeline.publish(builds)
        records = await pipeline.settle(watch, run.expected, TIMEOUT)
    by_state: dict[str, set[str]] = {}
    for vin, record in records.items():
        by_state.setdefault(record["state"], set()).add(vin)
    listed_states = sorted(set(by_state) - {"archived"})
    assert listed_states, f"no record of the run waits: {sorted(by_state)}"

    context = await new_context(browser)
    page = await sign_in(context, base, people["viewer"], "/")
    for state in listed_states:
        await page.goto(f"{base}/")
        cell = page.locator(f'[data-cell="{group}|{state}"] a')
        await expect(cell).to_have_text(str(len(by_state[state])))
        await cell.click()
        await page.wait_for_url(re.compile(rf"/states/{state}\?group={group}$"))

        async def lists_them(state: str = state) -> bool:
            vins = await page.locator("tr[data-vin]").evaluate_all("rows => rows.map(r => r.dataset.vin)")
            if set(vins) == by_state[state]:
                return True
            await page.reload()
            return False

        what = f"the {state} list of {group} showing {sorted(by_state[state])}"
        await eventually(lists_them, within_s=60, every_s=1, what=what)
        await expect(page.get_by_role("heading", level=1)).to_contain_text(state.replace("_", " "))
        assert await axe_violations(page) == []
    await page.goto(f"{base}/")
    await page.locator(f'[data-cell="{group}|archived"] a').click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Archived")

    async def archived_listed() -> bool:
        if await listed_vins(page) == by_state.get("archived", set()):
            return True
        await page.reload()
        return False

    await eventually(archived_listed, within_s=60, every_s=1, what=f"the archived list of {group}")
    await screenshot(page, request)
    await context.close()


async def test_a_production_user_finds_a_blocked_build_that_leaves_the_worklist_once_corrected(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    people: dict[str, Person],
    request: pytest.FixtureRequest,
) -> None:
    group = unique_group("WP")  # this test's records alone on the filtered worklist
    run = sample_run(30, seed=402, tag="M", defect_share=0.5)
    builds = [b.model_copy(update={"vehicle_group": group}) for b in run.builds]
    async with pipeline.watch(run.expected) as watch:
        await pipeline.publish(builds)
        records = await pipeline.settle(watch, run.expected, TIMEOUT)
    blocked = next(
        b
        for b in run.defective
        if records[b.vin]["state"] == "blocked"
        and all(f["owner"] == "production" for f in records[b.vin]["findings"])
    )
    code = records[blocked.vin]["findings"][0]["code"]

    context = await new_context(browser)
    listing = f"/worklists/production?group={group}&code={code}"
    page = await sign_in(context, base, people["production"], listing)
    await until_listed(page, blocked.vin, True)
    await expect(page.locator(f'tr[data-vin="{blocked.vin}"]')).to_contain_text(code)
    assert await axe_violations(page) == []

    corrected = clean_twin(402, 30, "M", blocked).model_copy(
        update={"revision": 2, "vin": blocked.vin, "vehicle_group": group}
    )
    await pipeline.publish([corrected])
    await until(pipeline, blocked.vin, "archived", revision=2)
    await until_listed(page, blocked.vin, False)
    await page.goto(f"{base}/records/{blocked.vin}")
    await expect(page.locator("[data-record-state]")).to_have_text("archived")
    await expect(page.locator("[data-check='passed']")).to_have_text("passed")
    assert await axe_violations(page) == []
    await screenshot(page, request)
    await context.close()


async def test_a_reviewer_accepts_one_waiting_record_and_rejects_another_back_to_production(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    people: dict[str, Person],
    request: pytest.FixtureRequest,
) -> None:
    group = unique_group("WR")
    for command in (("groups", "add", group), ("policy", "set", group, "review")):  # a known group only
        result = pipeline.coc(*command, "--by", "test set-up")
        assert result.returncode == 0, result.stdout + result.stderr
    accepted, rejected = (
        b.model_copy(update={"vehicle_group": group})
        for b in sample_run(2, seed=403, tag="N", defect_share=0.0).builds
    )
    await pipeline.publish([accepted, rejected])
    await until(pipeline, accepted.vin, "needs_review")
    await until(pipeline, rejected.vin, "needs_review")

    context = await new_context(browser)
    reviewer = people["reviewer"]
    page = await sign_in(context, base, reviewer, f"/records/{accepted.vin}")
    assert await axe_violations(page) == []
    await page.get_by_label("Comment").fill("group released after the audit")
    await page.get_by_role("button", name="Accept revision 1").click()
    # the decision's redirect lands before the next navigation starts
    await expect(page).to_have_url(re.compile(r"done=accept"))
    await until(pipeline, accepted.vin, "archived")
    await open_page(page, f"{base}/records/{accepted.vin}")
    await expect(page.locator("[data-record-state]")).to_have_text("archived")
    timeline = page.locator("table.timeline")
    await expect(timeline).to_contain_text(reviewer.name)
    await expect(timeline).to_contain_text("review:accept")

    await page.goto(f"{base}/records/{rejected.vin}")
    await page.get_by_label("Comment").fill("wrong paint code on the plate")
    await page.get_by_role("button", name="Reject revision 1").click()
    await expect(page).to_have_url(re.compile(r"done=reject"))
    record = await until(pipeline, rejected.vin, "blocked")
    assert [(f["code"], f["owner"]) for f in record["findings"]] == [("REVIEW_REJECTED", "production")]
    assert reviewer.name in record["findings"][0]["message"]
    assert "wrong paint code on the plate" in record["findings"][0]["message"]
    await page.goto(f"{base}/worklists/production?group={group}&code=REVIEW_REJECTED")
    await until_listed(page, rejected.vin, True)
    await expect(page.locator(f'tr[data-vin="{rejected.vin}"]')).to_contain_text("wrong paint code")
    await screenshot(page, request)
    await context.close()


async def test_the_downloaded_certificate_is_the_archived_one_and_passes_xmllint_and_xmlsec1(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    people: dict[str, Person],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    (build,) = sample_run(1, seed=404, tag="P", defect_share=0.0).builds
    await pipeline.publish([build])
    await until(pipeline, build.vin, "archived")
    archived = await pipeline.certificate(build.vin)
    assert archived.status_code == 200

    context = await new_context(browser)
    page = await sign_in(context, base, people["viewer"], f"/records/{build.vin}")
    async with page.expect_download() as waiting:
        await page.locator("[data-download]").click()
    download = await waiting.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert saved.read_bytes() == archived.content
    async with page.expect_download() as waiting_evidence:
        await page.locator("[data-evidence]").click()
    bundle = tmp_path / (await waiting_evidence.value).suggested_filename
    await (await waiting_evidence.value).save_as(bundle)
    with zipfile.ZipFile(bundle) as evidence_zip:
        files = {name.split("/", 1)[1]: evidence_zip.read(name) for name in evidence_zip.namelist()}
    assert files["certificate.xml"] == archived.content
    assert json.loads(files["manifest.json"])["sha256"] == archived.headers["x-coc-sha256"]
    await expect(page.locator("[data-check='schema']")).to_have_text("yes")
    await expect(page.locator("[data-check='seal']")).to_have_text("yes")
    fingerprint = archived.headers["x-coc-signer-fingerprint"]
    await expect(page.locator("[data-check='fingerprint']")).to_have_text(fingerprint)

    assert XMLLINT and XMLSEC1, "xmllint and xmlsec1 are installed by `make test`"
    xsd = pipeline.settings.xsd_path()
    lint = subprocess.run(
        [XMLLINT, "--noout", "--nonet", "--schema", str(xsd), str(saved)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stderr
    cert = Path(pipeline.settings.state_dir) / "keys" / "seal.crt"
    seal = subprocess.run(
        [XMLSEC1, "--verify", "--enabled-reference-uris", "empty", "--trusted-pem", str(cert), str(saved)],
        capture_output=True,
        text=True,
    )
    assert seal.returncode == 0, seal.stderr
    await page.get_by_role("heading", name="Approval context").scroll_into_view_if_needed()
    await expect(page.locator("[data-approval-hash]")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    assert await axe_violations(page) == []

    await page.goto(f"{base}/approvals")
    assert await axe_violations(page) == []
    await page.locator("table.approvals a").first.click()
    await expect(page.get_by_role("heading", name="Change history")).to_be_visible()
    assert await axe_violations(page) == []
    await screenshot(page, request)
    await context.close()


async def test_a_viewer_sees_no_action_and_forged_or_tokenless_changes_are_refused(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    people: dict[str, Person],
    request: pytest.FixtureRequest,
) -> None:
    (build,) = (
        b.model_copy(update={"vehicle_group": REVIEW_GROUP})
        for b in sample_run(1, seed=405, tag="S", defect_share=0.0).builds
    )
    await pipeline.publish([build])
    await until(pipeline, build.vin, "needs_review")

    context = await new_context(browser)
    page = await sign_in(context, base, people["viewer"], f"/records/{build.vin}")
    await expect(page.get_by_role("button", name="Accept revision 1")).to_have_count(0)
    await expect(page.get_by_role("button", name="Reject revision 1")).to_have_count(0)
    csrf = await page.locator("form.signout input[name=csrf]").input_value()
    forged = await page.request.post(
        f"{base}/records/{build.vin}/review",
        form={"csrf": csrf, "revision": "1", "decision": "accept", "comment": "forged"},
        max_redirects=0,
    )
    assert forged.status == 403

    reviewer_context = await new_context(browser)
    reviewer_page = await sign_in(reviewer_context, base, people["reviewer"], f"/records/{build.vin}")
    no_token = await reviewer_page.request.post(
        f"{base}/records/{build.vin}/review",
        form={"revision": "1", "decision": "accept", "comment": "no token"},
        max_redirects=0,
    )
    assert no_token.status == 403
    async with httpx.AsyncClient() as anonymous:
        signed_out = await anonymous.post(
            f"{base}/records/{build.vin}/review", data={"revision": "1", "decision": "accept"}
        )
    assert signed_out.status_code == 303 and "/signin" in signed_out.headers["location"]
    record = await pipeline.record(build.vin)
    assert record is not None and record["state"] == "needs_review", "a refused request changed the record"
    await screenshot(page, request)
    await reviewer_context.close()
    await context.close()


async def test_every_page_works_by_keyboard(
    browser: Browser, base: str, people: dict[str, Person], request: pytest.FixtureRequest
) -> None:
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(f"{base}/")
    await page.keyboard.press("Tab")  # the skip link comes first
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await tab_to(page, "document.activeElement.id === 'name'")
    await page.keyboard.type(people["viewer"].name)
    await page.keyboard.press("Tab")
    await page.keyboard.type(people["viewer"].password)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/")
    await tab_to(page, "document.activeElement.getAttribute('href') === '/worklists/production'")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/worklists/production")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    await screenshot(page, request)
    await context.close()


async def tab_to(page: Page, condition: str, most: int = 15) -> None:
    """Press Tab until ``condition`` (JavaScript) holds for the focused element; fail if it never does."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await page.evaluate(condition):
            return
    raise AssertionError(f"{most} presses of Tab never reached: {condition}")


async def test_a_compliance_lead_releases_a_held_group_and_the_change_names_them(
    pipeline: PrivateStack,
    browser: Browser,
    base: str,
    people: dict[str, Person],
    request: pytest.FixtureRequest,
) -> None:
    group = f"WH{int(time.time()) % 100000}"
    lead = people["lead"]
    context = await new_context(browser)
    page = await sign_in(context, base, lead, "/rollout")
    await set_policy(page, group, "hold", "not yet homologated for NL")
    builds = [
        b.model_copy(update={"vehicle_group": group})
        for b in sample_run(3, seed=406, tag="T", defect_share=0.0).builds
    ]
    await pipeline.publish(builds)
    for build in builds:
        record = await until(pipeline, build.vin, "held")
        assert [f["code"] for f in record["findings"]] == ["GROUP_HELD"]

    await page.goto(f"{base}/rollout")
    assert await axe_violations(page) == []
    await set_policy(page, group, "auto", "released for all markets")
    for build in builds:
        await until(pipeline, build.vin, "archived")
    await page.goto(f"{base}/rollout")
    row = page.locator(f'tr[data-group="{group}"]')
    await expect(row.locator("[data-policy]")).to_have_text("auto")
    await expect(row.locator("[data-set-by]")).to_contain_text(lead.name)
    await expect(row).to_contain_text(f"{lead.name} set group {group} to auto (was hold)")
    await screenshot(page, request)
    await context.close()


async def set_policy(page: Page, group: str, policy: str, why: str) -> None:
    """Add the group's row if the page does not list it yet, then set its policy."""
    row = page.locator(f'tr[data-group="{group}"]')
    if not await row.count():
        await page.get_by_label("New vehicle group").fill(group)
        await page.get_by_label("Policy of the new group").select_option(policy)
        await page.get_by_label("Why (new group)").fill(why)
        await page.get_by_role("button", name="Set policy of the new group").click()
    else:
        await row.get_by_label(f"Policy of {group}").select_option(policy)
        await row.get_by_label("Why").fill(why)
        await row.get_by_role("button", name=f"Set policy of {group}").click()
    await expect(page.get_by_role("status")).to_contain_text(f"The policy of {group} was changed")
