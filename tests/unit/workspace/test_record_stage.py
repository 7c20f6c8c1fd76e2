"""The record page's stage block: the record type, the previous stage and the link to its base certificate."""

from __future__ import annotations

import pytest

from devkit.multistage import approvals
from services.workspace.identity import PersonRole
from shared.contracts.builds import PreviousStage
from tests.unit.workspace.fakes import PEOPLE, T0, Site

pytestmark = pytest.mark.unit
VIN = "AFACC4M69VS040217"
SHA = "ab" * 32
PREVIOUS = PreviousStage(
    reference_id="8ace1dc2-efec-4b3b-8339-1b1664f5624a",
    sha256=SHA,
    vin=VIN,
    stage=1,
    approval_number="e13*2018/858*00217*02",
    type="TFXR",
    variant="TFXR-CC4",
    version="CC4-20D-M6",
    manufacturer="FORD MOTOR COMPANY OF SOUTHERN AFRICA (PTY) LTD",
)


def site_with(previous: PreviousStage | None, stored: bool) -> Site:
    completed = approvals()[1]
    site = Site()
    site.approvals.add(completed, T0, "type-approval")
    build = {"vin": VIN, "previous_stage": previous.model_dump(mode="json") if previous else None}
    site.api.received[VIN] = {
        "approval_key": completed.key,
        "approval_sha256": "f" * 64,
        "state": "validated",
        "revision": 1,
        "build": build,
    }
    if stored:
        site.api.bases[SHA] = b"<base/>"
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    return site


def test_a_completed_vehicles_page_names_its_record_type_and_previous_stage_and_links_the_base() -> None:
    site = site_with(PREVIOUS, stored=True)
    page = site.client.get(f"/records/{VIN}").text
    assert '<dd data-record-type="V"><strong>V</strong>: completed vehicle' in page
    assert "stage 1 by FORD MOTOR COMPANY OF SOUTHERN AFRICA (PTY) LTD" in page
    assert "e13*2018/858*00217*02 · type TFXR / variant TFXR-CC4 / version CC4-20D-M6" in page
    assert f"<code data-previous-reference>{PREVIOUS.reference_id}</code>" in page
    assert f'href="/base-certificates/{SHA}.xml"' in page and "not for this product" in page
    download = site.client.get(f"/base-certificates/{SHA}.xml")
    assert download.content == b"<base/>" and download.headers["x-coc-sha256"] == SHA


def test_a_base_certificate_not_imported_is_named_without_a_link() -> None:
    page = site_with(PREVIOUS, stored=False).client.get(f"/records/{VIN}").text
    assert "not imported into the archive" in page and "/base-certificates/" not in page


def test_a_completed_vehicle_whose_build_names_no_base_says_so() -> None:
    page = site_with(None, stored=False).client.get(f"/records/{VIN}").text
    assert 'data-record-type="V"' in page and "the build names no base certificate" in page


def test_a_base_certificate_download_takes_only_a_sha256() -> None:
    site = site_with(PREVIOUS, stored=False)
    assert site.client.get(f"/base-certificates/{SHA}.xml").status_code == 404
    assert site.client.get("/base-certificates/..%2Fetc.xml").status_code in (404, 422)


def test_without_its_approval_the_page_takes_the_record_type_the_status_record_names() -> None:
    site = Site()
    site.api.records[VIN] = {
        "vin": VIN,
        "revision": 1,
        "state": "blocked",
        "record_type": "I",
        "timeline": [],
        "findings": [],
    }
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    page = site.client.get(f"/records/{VIN}").text
    assert '<dd data-record-type="I"><strong>I</strong>: incomplete vehicle' in page
    assert "Previous stage" not in page
