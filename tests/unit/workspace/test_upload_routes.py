"""The approval upload's pages: only type-approval uploads and publishes, with CSRF, and only what it checked."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.workspace.adapters.pipeline import PipelineUnavailable
from services.workspace.identity import PersonRole
from services.workspace.routes import deps
from services.workspace.upload import files, staged, template
from services.workspace.upload.staged import StagedUploads
from shared import topics
from shared.contracts import Approval
from shared.contracts.approvals import master_data_sha256
from shared.ivi import IviSchema
from shared.ivi_import import import_document
from tests.unit.workspace.fakes import PEOPLE, T0, FakePipeline, Site, constant

pytestmark = pytest.mark.unit

TYPE_APPROVAL = PEOPLE[PersonRole.TYPE_APPROVAL]
VIEWER = PEOPLE[PersonRole.VIEWER]
REVIEWER = PEOPLE[PersonRole.REVIEWER]
MASS = "CocDataGroup/MassGroup/MassInRunningOrder"


@dataclass
class ArchivePipeline(FakePipeline):
    """The fake pipeline with the archive's list of certificates an approval change affects (interface 2)."""

    affected_answer: dict[str, dict[str, Any]] = field(default_factory=dict)
    archive_down: bool = False
    affected_asked: list[tuple[str, str | None, int]] = field(default_factory=list)

    async def affected(
        self, approval_key: str, *, other_than: str | None = None, limit: int = 1, after: str | None = None
    ) -> dict[str, Any]:
        self.affected_asked.append((approval_key, other_than, limit))
        if self.archive_down:
            raise PipelineUnavailable("http://archive.test did not answer: ConnectTimeout")
        return self.affected_answer.get(approval_key, {"total": 0, "items": [], "next": None})


@pytest.fixture(scope="module")
def approval(schema: IviSchema, xsd_path: Path) -> Approval:
    return import_document((xsd_path.parent / "specimen-M1-CHR.xml").read_bytes(), schema)[0]


def heavier(approval: Approval, mass: str = "1400") -> Approval:
    tree = json.loads(json.dumps(approval.certificate))
    tree["MassGroup"]["MassInRunningOrder"] = mass
    return approval.model_copy(update={"certificate": tree})


def site_with(approval: Approval) -> Site:
    site = Site(api=ArchivePipeline())
    site.app.dependency_overrides[deps.uploads] = constant(StagedUploads())
    site.approvals.add(approval, T0)
    return site


def upload(site: Site, csrf: str, content: bytes, name: str = "approvals.xlsx") -> Any:
    return site.client.post("/approvals/upload", data={"csrf": csrf}, files={"file": (name, content)})


def digest_of(page: str) -> str:
    found = re.search(r'name="digest" value="([0-9a-f]{64})"', page)
    assert found, "the page offers no publish form"
    return found.group(1)


def test_viewers_read_how_it_works_and_get_the_template_but_no_form(
    schema: IviSchema, approval: Approval
) -> None:
    site = site_with(approval)
    site.sign_in_as(VIEWER)
    page = site.client.get("/approvals/upload").text
    assert (
        "The template" in page
        and 'action="/approvals/upload"' not in page
        and "needs the type-approval role" in page
    )
    xlsx = site.client.get("/approvals/upload/template.xlsx")
    assert xlsx.status_code == 200 and xlsx.headers["content-type"] == template.XLSX_TYPE
    assert site.client.get("/approvals/upload/template.csv").text.startswith(
        "CocDataGroup/TypeApprovalNumber,"
    )


@pytest.mark.parametrize("person", [VIEWER, REVIEWER])
def test_only_the_type_approval_role_may_upload(schema: IviSchema, approval: Approval, person: Any) -> None:
    site = site_with(approval)
    csrf = site.sign_in_as(person)
    answer = upload(site, csrf, template.as_xlsx(schema, [heavier(approval)]))
    assert answer.status_code == 403 and "type-approval" in answer.text


def test_an_upload_without_the_csrf_token_is_refused(schema: IviSchema, approval: Approval) -> None:
    site = site_with(approval)
    site.sign_in_as(TYPE_APPROVAL)
    answer = upload(site, "forged", template.as_xlsx(schema, [heavier(approval)]))
    assert answer.status_code == 403 and "CSRF" in answer.text


def test_a_bad_row_is_shown_with_its_row_column_and_rule_downloadable_and_nothing_can_be_published(
    schema: IviSchema, approval: Approval
) -> None:
    site = site_with(approval)
    csrf = site.sign_in_as(TYPE_APPROVAL)
    bad = heavier(approval.model_copy(update={"version": "V2"}), "heavy")
    answer = upload(site, csrf, template.as_xlsx(schema, [heavier(approval), bad]))
    assert answer.status_code == 303
    page = site.client.get(answer.headers["location"]).text
    assert '<tr data-row="3"><td>3</td><td><code>' + MASS in page and "IVI 2.0 schema" in page
    assert 'name="digest"' not in page and "nothing\ncan be published" in page
    errors = site.client.get(answer.headers["location"] + "/errors.csv").text.splitlines()
    assert errors[0] == "row,column,rule,message" and errors[1].startswith(f"3,{MASS},IVI 2.0 schema,")
    token = answer.headers["location"].rsplit("/", 1)[-1]
    refused = site.client.post(f"/approvals/upload/{token}/publish", data={"csrf": csrf, "digest": "0" * 64})
    assert refused.status_code == 409 and site.sender.sent == []


def test_the_fixed_file_shows_the_diff_and_the_impact_and_publishes_under_the_persons_name(
    schema: IviSchema, approval: Approval
) -> None:
    site = site_with(approval)
    changed, new = heavier(approval), approval.model_copy(update={"version": "V2"})
    assert isinstance(site.api, ArchivePipeline)
    site.api.waiting[changed.key] = [{"vin": "WVWZZZAWZPU000001", "revision": 1}]
    site.api.affected_answer[changed.key] = {
        "total": 7,
        "items": [{"vin": "WVWZZZAWZPU000009"}],
        "next": None,
    }
    csrf = site.sign_in_as(TYPE_APPROVAL)
    same = approval.model_copy(update={"version": "V3"})
    site.approvals.add(same, T0)
    location = upload(site, csrf, template.as_xlsx(schema, [changed, new, same])).headers["location"]
    page = site.client.get(location).text
    old_mass = approval.certificate["MassGroup"]["MassInRunningOrder"]
    assert f"<code>{MASS}</code></th><td>{old_mass}</td><td>1400</td>" in page
    assert page.count("data-new") == 1 and page.count("data-unchanged") == 1
    assert 'data-waiting="1"' in page and 'data-archived="7"' in page
    assert site.api.waiting_requests == 1  # both changed keys' waiting records in one request
    # The count alone (limit 0): it comes from the archive's counters, a page of VINs is a scan.
    assert site.api.affected_asked[0] == (changed.key, master_data_sha256(changed), 0)
    answer = site.client.post(
        location + "/publish", data={"csrf": csrf, "digest": digest_of(page), "comment": "weighed again"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/approvals/upload?published=2"
    assert [(topic, key) for topic, _model, key in site.sender.sent] == [
        (topics.APPROVALS, changed.key),
        (topics.APPROVALS, new.key),
    ]
    sent = site.sender.sent[0][1]
    assert isinstance(sent, Approval) and sent.source is not None
    assert (sent.source.by, sent.source.via, sent.source.comment) == (
        TYPE_APPROVAL.name,
        "workspace",
        "weighed again",
    )
    assert [(e.person, e.action, e.target) for e in site.audit.entries] == [
        (TYPE_APPROVAL.name, "approval", f"approval:{changed.key}"),
        (TYPE_APPROVAL.name, "approval", f"approval:{new.key}"),
    ]
    assert site.audit.entries[0].change["changed"] == [[MASS, old_mass, "1400"]]
    history = site.client.get(f"/approvals/{changed.key}").text
    assert f"{TYPE_APPROVAL.name} changed 1 field in the workspace." in history and "weighed again" in history
    assert f"<dd data-current-by>{TYPE_APPROVAL.name} changed 1 field" in history
    again = site.client.post(location + "/publish", data={"csrf": csrf, "digest": digest_of(page)})
    assert again.status_code == 404 and len(site.sender.sent) == 2  # published once


def test_a_digest_other_than_the_pages_publishes_nothing(schema: IviSchema, approval: Approval) -> None:
    site = site_with(approval)
    csrf = site.sign_in_as(TYPE_APPROVAL)
    location = upload(site, csrf, template.as_csv(schema, [heavier(approval)]), "a.csv").headers["location"]
    answer = site.client.post(location + "/publish", data={"csrf": csrf, "digest": "a" * 64})
    assert answer.status_code == 409 and "digest" in answer.text and site.sender.sent == []


def test_another_session_cannot_see_or_publish_an_upload(schema: IviSchema, approval: Approval) -> None:
    site = site_with(approval)
    csrf = site.sign_in_as(TYPE_APPROVAL)
    location = upload(site, csrf, template.as_csv(schema, [heavier(approval)]), "a.csv").headers["location"]
    digest = digest_of(site.client.get(location).text)
    other_csrf = site.sign_in_as(TYPE_APPROVAL)  # a new session of the same person
    assert site.client.get(location).status_code == 404
    answer = site.client.post(location + "/publish", data={"csrf": other_csrf, "digest": digest})
    assert answer.status_code == 404 and site.sender.sent == []


def test_when_the_archive_does_not_answer_the_impact_says_the_count_is_unavailable(
    schema: IviSchema, approval: Approval
) -> None:
    site = site_with(approval)
    assert isinstance(site.api, ArchivePipeline)
    site.api.archive_down = True
    csrf = site.sign_in_as(TYPE_APPROVAL)
    location = upload(site, csrf, template.as_csv(schema, [heavier(approval)]), "a.csv").headers["location"]
    page = site.client.get(location).text
    assert (
        "number of archived certificates it would change is unavailable" in page
        and "data-archived" not in page
    )
    assert 'name="digest"' in page  # the archive's silence does not stop a correction


def test_an_upload_over_the_size_limit_is_refused_naming_the_limit(approval: Approval) -> None:
    site = site_with(approval)
    csrf = site.sign_in_as(TYPE_APPROVAL)
    answer = site.client.post(
        "/approvals/upload",
        data={"csrf": csrf},
        files={"file": ("big.csv", b"x" * 5_100_000)},
    )
    assert answer.status_code == 413 and "at most 5000000 bytes" in answer.text


def test_the_errors_csv_quotes_a_cell_that_would_start_a_formula(
    schema: IviSchema, approval: Approval
) -> None:
    site = site_with(approval)
    csrf = site.sign_in_as(TYPE_APPROVAL)
    header = ",".join([*template.cells(approval), "=cmd()"])
    row = ",".join([f'"{value}"' for value in template.cells(approval).values()] + ["1"])
    location = upload(site, csrf, f"{header}\n{row}\n".encode(), "a.csv").headers["location"]
    lines = site.client.get(location + "/errors.csv").text.splitlines()
    assert lines[1].startswith("2,'=cmd(),template column,")


def test_uploads_kept_are_bounded_per_session_and_in_all_and_expire(approval: Approval) -> None:
    store = StagedUploads(limit=4)
    parsed = files.Parsed("CSV", (approval,))
    first = store.put("s1", "A", "a.csv", b"1", parsed, T0)
    kept = [store.put("s1", "A", "a.csv", b"1", parsed, T0) for _ in range(3)]
    assert store.get(first.token, "s1", T0) is None and all(store.get(k.token, "s1", T0) for k in kept)
    others = [store.put(f"s{n}", "B", "b.csv", b"2", parsed, T0) for n in range(2, 4)]
    assert store.get(kept[0].token, "s1", T0) is None and store.get(others[0].token, "s2", T0) is not None
    assert store.get(others[1].token, "s3", T0 + staged.KEEP + dt.timedelta(seconds=1)) is None


def test_publishing_without_the_csrf_token_is_refused_and_the_upload_stays(
    schema: IviSchema, approval: Approval
) -> None:
    site = site_with(approval)
    csrf = site.sign_in_as(TYPE_APPROVAL)
    location = upload(site, csrf, template.as_csv(schema, [heavier(approval)]), "a.csv").headers["location"]
    digest = digest_of(site.client.get(location).text)
    forged = site.client.post(location + "/publish", data={"csrf": "forged", "digest": digest})
    assert forged.status_code == 403 and site.sender.sent == [] and site.audit.entries == []
    assert site.client.post(location + "/publish", data={"csrf": csrf, "digest": digest}).status_code == 303
