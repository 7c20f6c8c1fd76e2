"""Starting a re-issue from the approval's page: the count, the button for the compliance lead, CSRF, the audit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from devkit.samples import generate
from services.workspace.approvals import master_data_hash
from services.workspace.identity import PersonRole
from services.workspace.reissue.worker import Worker
from services.workspace.routes.reissue import Reissue
from tests.unit.workspace.fakes import PEOPLE, T0, FakePipeline, Site
from tests.unit.workspace.test_reissue import FakeArchive, FakeJobs, FakeSender, FakeStatus

pytestmark = pytest.mark.unit

LEAD, REVIEWER = PEOPLE[PersonRole.COMPLIANCE_LEAD], PEOPLE[PersonRole.REVIEWER]


@dataclass
class ArchivePipeline(FakePipeline):
    """The fake APIs with the archive's list of affected certificates: ``affected_total`` of them."""

    affected_total: int = 0

    async def affected(self, approval_key: str, **params: Any) -> dict[str, Any]:
        self.asked.append(("affected", {"approval_key": approval_key, **params}))
        return self._answer({"total": self.affected_total, "items": [], "next": None})


def site_with(total: int) -> tuple[Site, FakeJobs, str, str]:
    approval = generate(vehicles=1, seed=3, defect_share=0.0).approvals[0]
    site = Site(api=ArchivePipeline(affected_total=total))
    site.approvals.add(approval, T0, "type-approval")
    corrected = approval.model_copy(update={"actual_mass_max_kg": (approval.actual_mass_max_kg or 2000) + 5})
    site.approvals.add(corrected, T0, "Thandi Nkosi")
    jobs = FakeJobs()
    worker = Worker(jobs, FakeArchive([]), FakeStatus({}), FakeSender())  # type: ignore[arg-type]
    site.app.state.reissue = Reissue(jobs, worker)  # type: ignore[arg-type]
    return site, jobs, approval.key, master_data_hash(corrected)


def page_of(site: Site, key: str) -> str:
    answer = site.client.get(f"/approvals/{quote(key, safe='')}")
    assert answer.status_code == 200
    return answer.text


def test_the_approval_page_counts_the_certificates_naming_another_version_and_offers_the_lead_a_button() -> (
    None
):
    site, _jobs, key, digest = site_with(20)
    site.sign_in_as(LEAD)
    page = page_of(site, key)
    assert "<span data-reissue-count>20</span>" in page
    assert "Re-issue 20 certificates" in page
    assert ("affected", {"approval_key": key, "other_than": digest, "limit": 0}) in site.api.asked

    site.sign_in_as(REVIEWER)
    page = page_of(site, key)
    assert "<span data-reissue-count>20</span>" in page and "Re-issue 20 certificates" not in page


def test_the_lead_starts_a_re_issue_which_is_audited_and_wakes_the_worker() -> None:
    site, jobs, key, digest = site_with(20)
    csrf = site.sign_in_as(LEAD)
    answer = site.client.post("/reissue", data={"approval_key": key, "csrf": csrf})

    assert answer.status_code == 303
    assert re.fullmatch(r"/reissue/reissue-[0-9]{14}-[0-9a-f]{6}", answer.headers["location"])
    [job] = jobs.jobs.values()
    assert (job.approval_key, job.approval_sha256, job.expected, job.state) == (key, digest, 20, "planning")
    assert (job.changed_by, job.started_by) == ("Thandi Nkosi", LEAD.name)
    [entry] = site.audit.entries
    assert (entry.person, entry.action, entry.target) == (LEAD.name, "re-issue", f"approval:{key}")
    assert entry.change["job"] == job.id and entry.change["certificates"] == 20
    assert site.app.state.reissue.worker.wake.is_set()
    page = site.client.get(answer.headers["location"])
    assert page.status_code == 200 and job.id in page.text and LEAD.name in page.text
    progress = site.client.get(f"{answer.headers['location']}/progress").json()
    assert progress["state"] == "planning" and progress["expected"] == 20 and not progress["finished"]
    again = site.client.post("/reissue", data={"approval_key": key, "csrf": csrf})
    assert again.headers["location"] == f"/reissue/{job.id}" and len(jobs.jobs) == 1  # one job at a time


@pytest.mark.parametrize("who", ["no csrf", "reviewer"])
def test_a_re_issue_needs_the_forms_csrf_token_and_the_compliance_lead(who: str) -> None:
    site, jobs, key, _digest = site_with(20)
    csrf = site.sign_in_as(REVIEWER if who == "reviewer" else LEAD)
    answer = site.client.post(
        "/reissue", data={"approval_key": key, "csrf": "" if who == "no csrf" else csrf}
    )
    assert answer.status_code == 403
    assert jobs.jobs == {} and site.audit.entries == []


def test_nothing_to_re_issue_is_refused_naming_the_approval() -> None:
    site, jobs, key, _digest = site_with(0)
    csrf = site.sign_in_as(LEAD)
    answer = site.client.post("/reissue", data={"approval_key": key, "csrf": csrf})
    assert answer.status_code == 409 and answer.json()["detail"].startswith("approval_key:")
    assert jobs.jobs == {}
    unknown = site.client.post("/reissue", data={"approval_key": "no|such|key|here", "csrf": csrf})
    assert unknown.status_code == 404
