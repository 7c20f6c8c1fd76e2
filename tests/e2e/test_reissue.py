"""Re-issue after an approval correction, in the browser: 20 archived certificates corrected, chained and delivered.

A compliance lead opens the corrected approval's page, sees how many archived
certificates name its earlier version and starts the re-issue; the job's page
follows it to its end. Then each VIN's chain links the original to the
correction (IviVersionNumber 2, a new IviReferenceId, the original's SHA-256 as
its previous link), the correction's evidence names the approval change and
the people, and the test NAP received every correction naming the original's
reference id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import re
import secrets
import signal
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from devkit.authorities import Nap, Pki
from devkit.authorities import ivi_header as header_of
from shared.auth import Role
from shared.contracts import Approval, BuildRecord
from shared.contracts.approvals import master_data_sha256
from tests.e2e.browser import Person, axe_violations, new_context, screenshot, sign_in
from tests.e2e.helpers import NAP_COUNTRY, NAP_PORT, REVIEW_GROUP, PrivateStack, authorities_dir, sample_run

pytestmark = pytest.mark.e2e
VEHICLES = 20
SETTLE = 180.0


@pytest.fixture(scope="module")
def lead(pipeline: PrivateStack) -> Person:
    """A compliance lead of this module's own, made with `coc users add`."""
    person = Person("Lerato Mokoena", ("compliance-lead",), secrets.token_urlsafe(18))
    result = pipeline.coc(
        "users",
        "add",
        person.name,
        "--role",
        "compliance-lead",
        "--password-stdin",
        stdin=person.password + "\n",
    )
    assert result.returncode == 0, f"coc users add: {result.stdout}{result.stderr}"
    return person


@pytest.fixture(scope="module")
def nap(private_stack: PrivateStack) -> Iterator[Nap]:
    with Nap(Pki(authorities_dir(private_stack.settings.state_dir)), port=NAP_PORT).running() as running:
        yield running  # type: ignore[misc]


async def until(what: str, check: Any, timeout: float = SETTLE) -> Any:
    """``check()``'s answer once it is truthy (bounded wait, polled)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f}s")
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class Issued:
    """Certificates of an approval version of one test only, archived and delivered, then the approval corrected."""

    builds: list[BuildRecord]
    approval: Approval
    corrected: Approval
    originals: dict[str, httpx.Response]
    first_refs: dict[str, str]  # VIN → IviReferenceId of its original

    @property
    def new_sha(self) -> str:
        return master_data_sha256(self.corrected)


async def issued(
    stack: PrivateStack, nap: Nap, seed: int, tag: str, count: int = VEHICLES, reviewed: bool = False
) -> Issued:
    """``count`` builds archived and delivered to the NAP, then their approval corrected (posted again).

    ``reviewed``: of the vehicle group released by review, each accepted by a reviewer to archive.
    """
    run = sample_run(300, seed=seed, tag=tag, defect_share=0.0)
    key = Counter(b.approval.key for b in run.builds).most_common(1)[0][0]
    base_approval = next(a for a in run.approvals if a.key == key)
    # An approval version of this test only: the re-issue touches no other test's certificates.
    approval = base_approval.model_copy(update={"version": f"E2E-REISSUE-{tag}"})
    builds = [
        b.model_copy(
            update={
                "approval": b.approval.model_copy(update={"version": approval.version}),
                "intended_country": NAP_COUNTRY,
                **({"vehicle_group": REVIEW_GROUP} if reviewed else {}),
            }
        )
        for b in run.builds
        if b.approval.key == key
    ][:count]
    assert len(builds) == count
    assert (await stack.post_approvals([approval])).status_code == 202
    records = await stack.publish_and_settle(builds, SETTLE)
    if reviewed:
        assert {r["state"] for r in records.values()} == {"needs_review"}
        records = await accepted(stack, builds, 1)
    assert {r["state"] for r in records.values()} == {"archived"}
    originals = {b.vin: (await stack.certificate(b.vin)) for b in builds}
    first_refs = {vin: header_of(r.content)["reference"] for vin, r in originals.items()}
    await until("originals delivered to the NAP", lambda: _kept(nap, first_refs.values()))
    corrected = approval.model_copy(update={"actual_mass_max_kg": (approval.actual_mass_max_kg or 2000) + 5})
    assert (await stack.post_approvals([corrected])).status_code == 202
    return Issued(builds, approval, corrected, originals, first_refs)


async def accepted(
    stack: PrivateStack, builds: list[BuildRecord], revision: int
) -> dict[str, dict[str, Any]]:
    """Each build's ``revision`` accepted by a reviewer; the records once archived at it."""
    for build in builds:
        answer = await stack.post_review(build.vin, revision, "accept", "Rita Reviewer")
        assert answer.status_code == 202, f"POST /v1/reviews: {answer.status_code} {answer.text}"

    async def archived() -> dict[str, dict[str, Any]] | None:
        records = {b.vin: await stack.record(b.vin) or {} for b in builds}
        done = all((r.get("state"), r.get("revision")) == ("archived", revision) for r in records.values())
        return records if done else None

    found: dict[str, dict[str, Any]] = await until(f"revision {revision} archived after review", archived)
    return found


async def start_reissue(page: Page, base: str, made: Issued) -> str:
    """On the corrected approval's page, once it shows the corrected version, start the re-issue; the job's URL."""
    await page.goto(f"{base}/approvals/{quote(made.approval.key, safe='')}")

    async def offered() -> bool:
        await page.reload()
        return (
            await page.locator("[data-reissue-count]").count() == 1 and made.new_sha in await page.content()
        )

    await until("the corrected approval and its re-issue block on the page", offered, 60)
    count = len(made.builds)
    await expect(page.locator("[data-reissue-count]")).to_have_text(str(count))
    assert await axe_violations(page) == []
    button = page.get_by_role("button", name=f"Re-issue {count} certificates")
    await button.focus()  # by keyboard, as a person without a mouse starts it
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(re.escape(base) + r"/reissue/reissue-[0-9]{14}-[0-9a-f]{6}$"))
    return page.url


async def test_a_compliance_lead_re_issues_20_certificates_after_an_approval_correction(
    pipeline: PrivateStack,
    nap: Nap,
    browser: Browser,
    lead: Person,
    request: pytest.FixtureRequest,
) -> None:
    stack = pipeline
    made = await issued(stack, nap, seed=28, tag="7")
    builds, originals, first_refs = made.builds, made.originals, made.first_refs
    old_sha, new_sha = master_data_sha256(made.approval), made.new_sha

    base = stack.url("workspace")
    context = await new_context(browser)
    page = await sign_in(context, base, lead)
    await start_reissue(page, base, made)
    await expect(
        page.get_by_text("Finished: every planned certificate was re-issued and archived.")
    ).to_be_visible(timeout=SETTLE * 1000)
    await expect(page.locator('[data-reissue="archived"]')).to_have_text(str(VEHICLES))
    assert lead.name in await page.content()
    assert await axe_violations(page) == []

    for build in builds:  # the chain: original → correction
        latest = await stack.certificate(build.vin)
        assert latest.headers["x-coc-revision"] == "2" and latest.headers["x-coc-version-number"] == "2"
        assert latest.headers["x-coc-previous-sha256"] == originals[build.vin].headers["x-coc-sha256"]
        assert header_of(latest.content)["reference"] != first_refs[build.vin]
    vin = builds[0].vin
    evidence = await stack.web.get(
        f"{stack.url('archive')}/v1/evidence/{vin}", headers=stack.auth(Role.VIEWER)
    )
    with zipfile.ZipFile(io.BytesIO(evidence.content)) as bundle:
        folder = f"{vin}-2/"
        correction = json.loads(bundle.read(folder + "correction.json"))
        chain = json.loads(bundle.read(folder + "chain.json"))
    assert correction["approval_change"]["old_sha256"] == old_sha
    assert correction["approval_change"]["new_sha256"] == new_sha
    assert correction["started_by"] == lead.name and correction["corrects"]["revision"] == 1
    assert [link["revision"] for link in chain["links"]] == [1, 2]
    assert chain["links"][1]["previous_sha256"] == chain["links"][0]["sha256"]

    async def corrections_kept() -> list[dict[str, Any]]:
        kept = [s for s in nap.ledger.stored.values() if s["vin"] in first_refs and s["version"] == 2]
        return kept if len(kept) == VEHICLES else []

    kept = await until("every correction received by the NAP", corrections_kept)
    assert {s["vin"]: s["corrects"] for s in kept} == first_refs  # each names the original it corrects
    job_page = page.url
    await page.goto(f"{base}/records/{vin}")
    note = page.locator("[data-correction]")
    await expect(note).to_contain_text("re-issues revision 1")
    await expect(note).to_contain_text(lead.name)
    assert await axe_violations(page) == []
    await page.goto(job_page)
    await screenshot(page, request)
    await context.close()


async def test_a_re_issue_cut_by_a_sigkill_of_the_workspace_finishes_after_a_restart_each_vin_once(
    pipeline: PrivateStack,
    nap: Nap,
    browser: Browser,
    lead: Person,
    request: pytest.FixtureRequest,
) -> None:
    stack = pipeline
    made = await issued(stack, nap, seed=29, tag="8")
    base = stack.url("workspace")
    # The workspace again, publishing two re-issues a second, so the kill comes in the middle.
    stack.kill("workspace")
    paced = dataclasses.replace(stack, env={**stack.env, "COC_REISSUE_RATE": "2"})
    process = paced.start_service("workspace", stack.settings.port_of("workspace"), stack.log("workspace"))
    await until("the paced workspace answering", lambda: _healthy(stack, base), 60)
    context = await new_context(browser)
    page = await sign_in(context, base, lead)
    job_url = await start_reissue(page, base, made)

    async def under_way() -> dict[str, Any] | None:
        answer = await page.request.get(f"{job_url}/progress")
        progress: dict[str, Any] = await answer.json()
        return progress if progress["published"] >= 4 else None

    at_kill = await until("the re-issue under way", under_way, 60)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(15)
    assert at_kill["published"] < VEHICLES, at_kill
    stack.up()  # the workspace as the stack runs it, which finds the job and finishes it
    await page.goto(job_url)
    await expect(
        page.get_by_text("Finished: every planned certificate was re-issued and archived.")
    ).to_be_visible(timeout=SETTLE * 1000)
    await expect(page.locator('[data-reissue="published"]')).to_have_text(str(VEHICLES))

    for build in made.builds:  # each VIN corrected once: revision 2, no revision 3
        latest = await stack.certificate(build.vin)
        assert latest.headers["x-coc-revision"] == "2", build.vin
        assert (await stack.certificate(build.vin, 3)).status_code == 404

    async def corrections_kept() -> Counter[tuple[str, int]]:
        kept = Counter(k for k in nap.ledger.per_certificate().elements() if k[0] in made.first_refs)
        return (
            kept if sum(n for (_vin, version), n in kept.items() if version == 2) >= VEHICLES else Counter()
        )

    kept = await until("every correction received by the NAP", corrections_kept)
    assert {vin: kept[(vin, 2)] for vin in made.first_refs} == dict.fromkeys(made.first_refs, 1)
    await screenshot(page, request)
    await context.close()


async def _healthy(stack: PrivateStack, base: str) -> bool:
    try:
        return (await stack.web.get(f"{base}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def _kept(nap: Nap, references: Any) -> bool:
    return all(ref in nap.ledger.stored for ref in references)


async def test_a_re_issue_of_a_group_released_by_review_waits_for_a_reviewer_like_any_release(
    pipeline: PrivateStack,
    nap: Nap,
    browser: Browser,
    lead: Person,
) -> None:
    stack = pipeline
    made = await issued(stack, nap, seed=31, tag="9", count=3, reviewed=True)
    base = stack.url("workspace")
    context = await new_context(browser)
    page = await sign_in(context, base, lead)
    job_url = await start_reissue(page, base, made)

    async def waiting() -> bool:
        records = [await stack.record(b.vin) or {} for b in made.builds]
        return all((r.get("state"), r.get("revision")) == ("needs_review", 2) for r in records)

    await until("the corrections waiting for a reviewer", waiting)
    await page.goto(job_url)
    await expect(page.locator("[data-reissue-state]")).to_contain_text("waiting for validation, review")
    await accepted(stack, made.builds, 2)
    await page.goto(job_url)
    await expect(
        page.get_by_text("Finished: every planned certificate was re-issued and archived.")
    ).to_be_visible()
    for build in made.builds:
        latest = await stack.certificate(build.vin)
        assert latest.headers["x-coc-previous-sha256"] == made.originals[build.vin].headers["x-coc-sha256"]
    await context.close()
