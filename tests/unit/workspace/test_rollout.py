"""The rollout page keeps vehicle groups and plants as master data: a policy only for a known group."""

from __future__ import annotations

import pytest

from services.workspace.identity import PersonRole
from shared import topics
from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.contracts.policies import PolicyChange
from tests.unit.workspace.fakes import PEOPLE, Site

pytestmark = pytest.mark.unit

LEAD = PEOPLE[PersonRole.COMPLIANCE_LEAD]


def test_a_policy_for_a_group_not_in_the_master_data_is_refused_naming_the_group_and_nothing_is_sent() -> (
    None
):
    site = Site()
    csrf = site.sign_in_as(LEAD)
    answer = site.client.post("/rollout", data={"group": "KUDDU", "policy": "hold", "csrf": csrf})
    assert (
        answer.status_code == 422 and "group: vehicle group 'KUDDU' is not in the master data" in answer.text
    )
    assert site.sender.sent == [] and site.policies.get("KUDDU") is None and site.audit.entries == []


def test_a_new_group_added_on_purpose_becomes_master_data_and_gets_its_policy() -> None:
    site = Site()
    csrf = site.sign_in_as(LEAD)
    form = {"group": "ELAND", "policy": "hold", "comment": "new line", "new": "true", "csrf": csrf}
    answer = site.client.post("/rollout", data=form)
    assert answer.status_code == 303
    (named_topic, named, named_key), (policy_topic, change, _key) = site.sender.sent
    assert (named_topic, named_key, policy_topic) == (
        topics.MASTERDATA,
        "vehicle_group:ELAND",
        topics.POLICIES,
    )
    assert isinstance(named, MasterDataChange) and named.set_by == LEAD.name and named.known
    assert isinstance(change, PolicyChange) and change.policy.value == "hold"
    assert site.master.is_known(MasterKind.VEHICLE_GROUP, "ELAND")
    assert [(e.action, e.target) for e in site.audit.entries] == [
        ("master data", "group:ELAND"),
        ("policy", "group:ELAND"),
    ]
    page = site.client.get("/rollout")
    assert 'data-group="ELAND"' in page.text and "data-unknown" not in page.text


@pytest.mark.parametrize(("path", "field"), [("/rollout", "group"), ("/rollout/plants", "plant")])
def test_a_name_with_markup_is_refused_naming_the_field(path: str, field: str) -> None:
    site = Site()
    csrf = site.sign_in_as(LEAD)
    form = {field: "<script>alert(1)</script>", "policy": "auto", "new": "true", "csrf": csrf}
    answer = site.client.post(path, data=form)
    assert answer.status_code == 422 and f"{field}: may hold only letters, digits, spaces" in answer.text
    assert site.sender.sent == []


def test_a_plant_added_is_listed_and_a_group_only_the_board_counts_is_marked_unknown() -> None:
    site = Site()
    site.api.readiness_answer = {"by_group": {"TYPO": {"total": 1}}}
    csrf = site.sign_in_as(LEAD)
    answer = site.client.post("/rollout/plants", data={"plant": "Győr (Body 2)", "csrf": csrf})
    assert answer.status_code == 303 and site.master.is_known(MasterKind.PLANT, "Győr (Body 2)")
    page = site.client.get(answer.headers["location"])
    assert 'data-plant="Győr (Body 2)"' in page.text and "was added to the master data" in page.text
    assert 'data-group="TYPO"' in page.text and "not in the master data" in page.text
