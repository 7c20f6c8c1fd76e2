"""Who may do what in the workspace: every role on every page and every change, the CSRF check, signing out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from services.workspace.identity import PersonRole
from shared import topics
from shared.contracts.events import Review
from shared.contracts.policies import PolicyChange
from tests.unit.workspace.fakes import PEOPLE, Site

pytestmark = pytest.mark.unit
VIN = "WAITING0VIN000001"
OTHER_SESSION_CSRF = "dGhlIHRva2VuIG9mIGFub3RoZXIgc2Vzc2lvbiwgZm9yZ2Vk"


def waiting_site() -> Site:
    site = Site()
    site.api.records[VIN] = {
        "vin": VIN,
        "revision": 1,
        "state": "needs_review",
        "timeline": [],
        "findings": [],
    }
    return site


@dataclass(frozen=True)
class Action:
    """A form that changes something: where it goes, what it sends, who may, and what it leaves behind."""

    path: str
    form: dict[str, str]
    role: PersonRole
    done: Callable[[Site], bool]


ACTIONS = {
    "review": Action(
        f"/records/{VIN}/review",
        {"revision": "1", "decision": "accept", "comment": "checked"},
        PersonRole.REVIEWER,
        lambda site: any(topic == topics.REVIEWS for topic, _, _ in site.sender.sent),
    ),
    "set policy": Action(
        "/rollout",
        {"group": "KUDU", "policy": "hold", "comment": "not yet approved for NL"},
        PersonRole.COMPLIANCE_LEAD,
        lambda site: site.policies.get("KUDU") is not None,
    ),
    "sign out": Action(
        "/signout",
        {},
        PersonRole.VIEWER,
        lambda site: 'coc_session=""' in site.last_cookies,
    ),
}
PAGES = [
    "/",
    "/board.json",
    "/states/blocked",
    "/states/archived",
    "/worklists/production",
    f"/records/{VIN}",
    "/approvals",
    "/rollout",
]


def post(site: Site, action: Action, csrf: str | None) -> Any:
    form = {**action.form, **({"csrf": csrf} if csrf is not None else {})}
    response = site.client.post(action.path, data=form)
    site.last_cookies = response.headers.get("set-cookie", "")
    return response


@pytest.mark.parametrize("role", list(PersonRole), ids=lambda role: role.value)
@pytest.mark.parametrize("name", list(ACTIONS))
def test_a_change_is_made_for_the_role_it_needs_and_refused_with_403_for_any_other(
    name: str, role: PersonRole
) -> None:
    site, action = waiting_site(), ACTIONS[name]
    csrf = site.sign_in_as(PEOPLE[role])

    response = post(site, action, csrf)

    allowed = role is action.role or action.role is PersonRole.VIEWER
    if allowed:
        assert response.status_code == 303, response.text
        assert action.done(site)
    else:
        assert response.status_code == 403
        assert f"this needs the role {action.role.value}" in response.json()["detail"]
        assert not action.done(site) and site.audit.entries == []


@pytest.mark.parametrize(
    "csrf", [None, "", OTHER_SESSION_CSRF], ids=["missing", "empty", "another session's"]
)
@pytest.mark.parametrize("name", list(ACTIONS))
def test_a_change_without_its_sessions_csrf_token_is_refused_even_for_the_right_role(
    name: str, csrf: str | None
) -> None:
    site, action = waiting_site(), ACTIONS[name]
    site.sign_in_as(PEOPLE[action.role])

    response = post(site, action, csrf)

    assert response.status_code == 403
    assert "CSRF token is missing or wrong" in response.json()["detail"]
    assert not action.done(site) and site.sender.sent == [] and site.audit.entries == []


def test_a_csrf_token_of_the_right_session_with_the_wrong_role_says_the_role_not_the_token() -> None:
    site = waiting_site()
    csrf = site.sign_in_as(PEOPLE[PersonRole.VIEWER])
    response = post(site, ACTIONS["review"], csrf)
    assert response.status_code == 403 and "reviewer" in response.json()["detail"]


@pytest.mark.parametrize("name", list(ACTIONS))
def test_a_signed_out_visitors_change_is_sent_to_sign_in_and_changes_nothing(name: str) -> None:
    site, action = waiting_site(), ACTIONS[name]
    response = post(site, action, "whatever")
    assert response.status_code == 303
    assert response.headers["location"] == f"/signin?next={action.path}"
    assert site.sender.sent == [] and site.audit.entries == [] and site.policies.groups() == []


@pytest.mark.parametrize("role", list(PersonRole), ids=lambda role: role.value)
def test_every_signed_in_role_may_read_every_page(role: PersonRole) -> None:
    site = waiting_site()
    site.sign_in_as(PEOPLE[role])
    for path in PAGES:
        response = site.client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        if path != "/board.json":
            assert PEOPLE[role].name in response.text, path  # the page says who is signed in


@pytest.mark.parametrize("path", [*PAGES, "/live", "/worklists/production?group=KUDU&page=2"])
def test_a_signed_out_visitor_is_sent_to_sign_in_and_back_to_the_page_asked_for(path: str) -> None:
    site = Site()
    response = site.client.get(path)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/signin?next=")
    assert site.client.get(location).status_code == 200


def test_a_session_of_a_person_removed_since_is_no_session() -> None:
    site = Site()
    site.sign_in_as(PEOPLE[PersonRole.REVIEWER])
    del site.users.people[PEOPLE[PersonRole.REVIEWER].name]
    assert site.client.get("/").status_code == 303


def test_a_session_ends_when_it_expires_on_the_clock() -> None:
    site = Site()
    site.sign_in_as(PEOPLE[PersonRole.VIEWER])  # for one hour
    assert site.client.get("/").status_code == 200
    site.clock.advance(3601)
    assert site.client.get("/").status_code == 303


def test_the_review_and_the_policy_change_are_sent_and_recorded_with_the_signed_in_persons_name() -> None:
    site = waiting_site()
    reviewer, lead = PEOPLE[PersonRole.REVIEWER], PEOPLE[PersonRole.COMPLIANCE_LEAD]
    post(site, ACTIONS["review"], site.sign_in_as(reviewer))
    post(site, ACTIONS["set policy"], site.sign_in_as(lead))

    (review_topic, review, review_key), (policy_topic, change, policy_key) = site.sender.sent
    assert (review_topic, review_key, policy_topic, policy_key) == (
        topics.REVIEWS,
        VIN,
        topics.POLICIES,
        "KUDU",
    )
    assert isinstance(review, Review) and review.reviewer == reviewer.name and review.comment == "checked"
    assert (
        isinstance(change, PolicyChange) and change.set_by == lead.name and change.set_at == site.clock.now()
    )
    assert [(e.person, e.action, e.target) for e in site.audit.entries] == [
        (reviewer.name, "review:accept", f"record:{VIN}"),
        (lead.name, "policy", "group:KUDU"),
    ]
    assert site.audit.entries[1].change == {
        "policy": ["default", "hold"],
        "comment": "not yet approved for NL",
    }
