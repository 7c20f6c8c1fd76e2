"""Reviews only where a review waits: the form, the 409 for anything else, and "released by" only for a release."""

from __future__ import annotations

import re

import pytest

from services.workspace.identity import PersonRole
from tests.unit.workspace.fakes import PEOPLE, T0, Site

pytestmark = pytest.mark.unit

VIN = "REVIEWS0VIN000001"
REVIEWER = PEOPLE[PersonRole.REVIEWER]
ERROR = {
    "code": "TYRE_NOT_APPROVED",
    "severity": "error",
    "owner": "type-approval",
    "path": "x",
    "message": "m",
}


def record(state: str, revision: int = 1) -> dict[str, object]:
    event = {
        "revision": revision,
        "stage": "validation",
        "state": state,
        "time": T0.isoformat(),
        "service": "v",
    }
    findings = [ERROR] if state == "blocked" else []
    return {"vin": VIN, "revision": revision, "state": state, "timeline": [event], "findings": findings}


def received(state: str, reviewed_by: str | None) -> dict[str, object]:
    """Validation's pending record: its decision and the reviewer it stores."""
    return {
        "vin": VIN,
        "revision": 1,
        "state": state,
        "waiting": state != "validated",
        "reviewed_by": reviewed_by,
        "approval_key": "e1*2018/858*00001*00|M1|A|1",
        "approval_sha256": None,
        "build": {"vin": VIN},
        "updated_at": T0.isoformat(),
    }


def post(site: Site, csrf: str, decision: str, revision: int = 1) -> int:
    form = {"csrf": csrf, "revision": str(revision), "decision": decision, "comment": "forged"}
    return site.client.post(f"/records/{VIN}/review", data=form).status_code


@pytest.mark.parametrize("state", ["blocked", "held", "validated", "received", "archived", "failed"])
@pytest.mark.parametrize("decision", ["accept", "reject"])
def test_a_review_of_a_record_not_waiting_for_a_review_is_409_and_nothing_is_sent_or_audited(
    state: str, decision: str
) -> None:
    site = Site()
    site.api.records[VIN] = record(state)
    assert post(site, site.sign_in_as(REVIEWER), decision) == 409
    assert site.sender.sent == [] and site.audit.entries == []


def test_an_error_blocked_record_offers_a_reviewer_no_accept_and_says_why() -> None:
    site = Site()
    site.api.records[VIN] = record("blocked")
    site.sign_in_as(REVIEWER)
    page = site.client.get(f"/records/{VIN}").text
    assert "Accept revision" not in page and "Reject revision" not in page
    assert 'action="/records/' not in page
    assert "no review can release it" in page


def test_a_held_record_points_to_the_groups_release_instead_of_a_review() -> None:
    site = Site()
    site.api.records[VIN] = record("held")
    site.sign_in_as(REVIEWER)
    page = site.client.get(f"/records/{VIN}").text
    assert "Accept revision" not in page and 'href="/rollout"' in page


def test_a_record_needing_review_offers_both_decisions_on_its_revision() -> None:
    site = Site()
    site.api.records[VIN] = record("needs_review", revision=3)
    site.sign_in_as(REVIEWER)
    page = site.client.get(f"/records/{VIN}").text
    assert "Accept revision 3" in page and "Reject revision 3" in page
    assert re.search(r'name="revision" value="3"', page)


@pytest.mark.parametrize(
    ("state", "reviewed_by", "says_released"),
    [
        ("validated", "R. Eve", True),
        ("blocked", "R. Eve", False),  # a rejection, or an acceptance that could not release it
        ("needs_review", None, False),
        ("validated", None, False),  # released by its group's policy, not by a person
    ],
)
def test_the_record_says_released_by_only_for_a_release_that_happened(
    state: str, reviewed_by: str | None, says_released: bool
) -> None:
    site = Site()
    site.api.records[VIN] = record(state if state != "validated" else "archived")
    site.api.received[VIN] = received(state, reviewed_by)
    site.sign_in_as(REVIEWER)
    page = site.client.get(f"/records/{VIN}").text
    assert ("released by" in page) is says_released


@pytest.mark.parametrize("comment", ["bad\x00", "red \x1b[31m", "zero\u200bwidth"])
def test_a_review_comment_with_a_control_character_is_422_naming_the_comment_and_nothing_is_sent(
    comment: str,
) -> None:
    site = Site()
    site.api.records[VIN] = record("needs_review")
    csrf = site.sign_in_as(REVIEWER)
    form = {"csrf": csrf, "revision": "1", "decision": "reject", "comment": comment}
    answer = site.client.post(f"/records/{VIN}/review", data=form)
    assert answer.status_code == 422 and "comment" in answer.text and "control characters" in answer.text
    assert site.sender.sent == [] and site.audit.entries == []
