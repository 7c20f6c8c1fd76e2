"""The workspace's pages and forms through FastAPI's TestClient: what they answer, show and refuse.

Every dependency is a fake (``tests.unit.workspace.fakes``); time moves on a fake clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from lxml import etree

from devkit.keys import CERT_FILE, KEY_FILE, write_dev_seal
from services.signing.seal import Seal
from services.workspace.adapters.pipeline import Certificate
from services.workspace.identity import PersonRole
from services.workspace.routes.answers import TEMPLATES
from shared.xml import load_ivi_schema
from tests.unit.workspace.fakes import PASSWORD, PEOPLE, T0, Site

pytestmark = pytest.mark.unit
VIN = "WAITING0VIN000001"
REVIEWER, LEAD, VIEWER = (
    PEOPLE[PersonRole.REVIEWER],
    PEOPLE[PersonRole.COMPLIANCE_LEAD],
    PEOPLE[PersonRole.VIEWER],
)


def record(state: str = "needs_review", revision: int = 1) -> dict[str, object]:
    event = {
        "revision": revision,
        "stage": "validation",
        "state": state,
        "time": T0.isoformat(),
        "service": "v@1",
    }
    return {"vin": VIN, "revision": revision, "state": state, "timeline": [event], "findings": []}


def review(site: Site, csrf: str, revision: int = 1, decision: str = "accept", comment: str = "ok") -> int:
    form = {"csrf": csrf, "revision": str(revision), "decision": decision, "comment": comment}
    return site.client.post(f"/records/{VIN}/review", data=form).status_code


# -- review: conflicts and refusals -------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "revision"),
    [(None, 1), (record("archived"), 1), (record("received"), 1), (record("needs_review", 2), 1)],
    ids=["unknown VIN", "archived", "on its way", "a newer revision waits"],
)
def test_a_review_of_a_record_not_waiting_for_that_revision_is_a_409_and_sends_nothing(
    found: dict[str, object] | None, revision: int
) -> None:
    site = Site()
    if found is not None:
        site.api.records[VIN] = found
    assert review(site, site.sign_in_as(REVIEWER), revision=revision) == 409
    assert site.sender.sent == [] and site.audit.entries == []


@pytest.mark.parametrize("decision", ["accept", "reject"])
def test_a_record_waiting_for_a_review_may_be_reviewed(decision: str) -> None:
    site = Site()
    site.api.records[VIN] = record("needs_review")
    assert review(site, site.sign_in_as(REVIEWER), decision=decision) == 303
    assert len(site.sender.sent) == 1 and len(site.audit.entries) == 1


def test_a_rejection_needs_a_comment_saying_why() -> None:
    site = Site()
    site.api.records[VIN] = record()
    csrf = site.sign_in_as(REVIEWER)
    assert review(site, csrf, decision="reject", comment="   ") == 422
    assert site.sender.sent == []
    assert review(site, csrf, decision="reject", comment="wrong paint code") == 303
    assert site.sender.sent[0][1].comment == "wrong paint code"  # type: ignore[attr-defined]


def test_a_review_goes_back_to_the_record_page_which_says_it_was_sent() -> None:
    site = Site()
    site.api.records[VIN] = record()
    response = site.client.post(
        f"/records/{VIN}/review",
        data={"csrf": site.sign_in_as(REVIEWER), "revision": "1", "decision": "accept"},
    )
    assert response.headers["location"] == f"/records/{VIN}?done=accept"
    page = site.client.get(response.headers["location"]).text
    assert "Your decision (accept) was sent" in page
    assert "review:accept" in page  # the timeline shows the person's action


def test_a_review_cannot_be_made_when_the_status_service_is_away_and_says_so_with_503() -> None:
    site = Site()
    site.api.records[VIN] = record()
    site.api.down = True
    assert review(site, site.sign_in_as(REVIEWER)) == 503
    assert site.sender.sent == []


# -- what a page offers whom --------------------------------------------------------------------


@pytest.mark.parametrize("role", list(PersonRole), ids=lambda role: role.value)
def test_the_review_form_is_offered_to_a_reviewer_alone(role: PersonRole) -> None:
    site = Site()
    site.api.records[VIN] = record()
    site.sign_in_as(PEOPLE[role])
    page = site.client.get(f"/records/{VIN}").text
    offered = "Accept revision 1" in page
    assert offered is (role is PersonRole.REVIEWER)
    assert ("You do not hold the reviewer role" in page) is not offered


@pytest.mark.parametrize("role", list(PersonRole), ids=lambda role: role.value)
def test_the_policy_forms_are_offered_to_a_compliance_lead_alone(role: PersonRole) -> None:
    site = Site()
    site.api.readiness_answer = {"by_group": {"KUDU": {"archived": 1}, "unknown": {"received": 1}}}
    site.sign_in_as(PEOPLE[role])
    page = site.client.get("/rollout").text
    assert 'data-group="KUDU"' in page and 'data-group="unknown"' not in page
    assert ("Set policy of KUDU" in page) is (role is PersonRole.COMPLIANCE_LEAD)
    assert ("Set policy of the new group" in page) is (role is PersonRole.COMPLIANCE_LEAD)


def test_a_policy_change_shows_on_the_rollout_page_with_who_set_it() -> None:
    site = Site()
    csrf = site.sign_in_as(LEAD)
    form = {"csrf": csrf, "group": " NEWG ", "policy": "review", "new": "true"}  # added as a new group
    response = site.client.post("/rollout", data=form)
    assert response.headers["location"] == "/rollout?done=NEWG"
    page = site.client.get(response.headers["location"]).text
    assert "The policy of NEWG was changed" in page
    row = re.search(r'<tr data-group="NEWG">.*?</tr>', page, flags=re.S)
    assert row and "review" in row.group(0) and LEAD.name in row.group(0)


# -- signing in ---------------------------------------------------------------------------------


def sign_in_form(site: Site, target: str = "/") -> str:
    page = site.client.get("/signin", params={"next": target}).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the sign-in form carries a CSRF token"
    return found.group(1)


def sign_in(site: Site, csrf: str, password: str, target: str = "/") -> tuple[int, str]:
    form = {"name": REVIEWER.name, "password": password, "csrf": csrf, "next": target}
    response = site.client.post("/signin", data=form)
    return response.status_code, response.headers.get("location") or response.text


def test_signing_in_opens_the_page_asked_for_with_a_session_that_serves_the_next_pages() -> None:
    site = Site()
    code, where = sign_in(site, sign_in_form(site, "/approvals"), PASSWORD, "/approvals")
    assert (code, where) == (303, "/approvals")
    assert "Rita" not in where and site.client.get("/approvals").status_code == 200


def test_a_wrong_password_slows_the_next_attempt_until_the_clock_has_moved_on() -> None:
    site = Site()
    csrf = sign_in_form(site)
    code, page = sign_in(site, csrf, "not the password")
    assert code == 401 and "Name or password is wrong" in page
    code, page = sign_in(site, csrf, PASSWORD)  # the right password, but too soon
    assert code == 429 and "Too many wrong passwords: try again in 1 s" in page
    site.clock.advance(0.9)
    assert sign_in(site, csrf, PASSWORD)[0] == 429
    site.clock.advance(0.2)
    assert sign_in(site, csrf, PASSWORD) == (303, "/")


def test_a_second_wrong_password_doubles_the_wait() -> None:
    site = Site()
    csrf = sign_in_form(site)
    sign_in(site, csrf, "wrong once")
    site.clock.advance(1.1)
    sign_in(site, csrf, "wrong twice")
    site.clock.advance(1.1)
    code, page = sign_in(site, csrf, PASSWORD)
    assert code == 429 and "try again in 1 s" in page
    site.clock.advance(1.0)
    assert sign_in(site, csrf, PASSWORD)[0] == 303


@pytest.mark.parametrize("csrf", ["", "forged"])
def test_a_sign_in_without_the_forms_token_is_refused(csrf: str) -> None:
    site = Site()
    sign_in_form(site)
    assert sign_in(site, csrf, PASSWORD)[0] == 403
    assert "coc_session" not in site.client.cookies


def test_signing_in_never_redirects_off_the_site() -> None:
    site = Site()
    assert sign_in(site, sign_in_form(site), PASSWORD, "https://evil.example/")[1] == "/"


def test_signing_out_ends_the_session() -> None:
    site = Site()
    csrf = site.sign_in_as(VIEWER)
    response = site.client.post("/signout", data={"csrf": csrf})
    assert response.headers["location"] == "/signin"
    assert site.client.get("/").status_code == 303


# -- the pipeline away --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/", "The status service did not answer (http://status.test did not answer: ConnectTimeout)"),
        ("/worklists/production", "The status service did not answer"),
        ("/states/blocked", "The status service did not answer"),
        (f"/records/{VIN}", "did not answer: ConnectTimeout; this page may be incomplete"),
        ("/rollout", "only groups with a policy are listed"),
    ],
)
def test_a_page_shows_what_it_has_and_says_which_service_did_not_answer(path: str, says: str) -> None:
    site = Site()
    site.api.down = True
    site.sign_in_as(VIEWER)
    response = site.client.get(path)
    assert response.status_code == 200 and says in response.text


@pytest.mark.parametrize(
    "path", ["/board.json", f"/records/{VIN}/certificate.xml", f"/records/{VIN}/evidence.zip"]
)
def test_an_answer_that_cannot_do_without_the_pipeline_is_a_503_saying_which_service(path: str) -> None:
    site = Site()
    site.api.down = True
    site.sign_in_as(VIEWER)
    response = site.client.get(path)
    assert response.status_code == 503
    assert response.json() == {"detail": "http://status.test did not answer: ConnectTimeout"}


# -- lists, board, records, approvals ------------------------------------------------------------


def test_a_worklist_asks_for_its_filters_and_page_and_links_the_next_one() -> None:
    site = Site()
    items = [
        {"vin": f"V{i}", "revision": 1, "state": "blocked", "age_s": 7200, "findings": []} for i in range(10)
    ]
    site.api.lists["production"] = {"items": items, "total": 25}
    site.sign_in_as(VIEWER)
    page = site.client.get(
        "/worklists/production", params={"group": " KUDU ", "code": "mass", "page": 2}
    ).text
    assert site.api.asked == [
        ("worklist:production", {"group": "KUDU", "code": "MASS", "page": 2, "size": 10})
    ]
    assert "25 records, page 2 of 3" in page and "2 h 0 min" in page
    assert 'rel="next" href="?group=KUDU&amp;code=MASS&amp;page=3"' in page


def test_the_board_shows_the_read_models_counts_and_its_json_is_the_same_numbers() -> None:
    site = Site()
    site.api.readiness_answer = {"total": 3, "by_group": {"KUDU": {"blocked": 2, "archived": 1}}}
    site.sign_in_as(VIEWER)
    page = site.client.get("/").text
    assert 'aria-label="2 blocked in KUDU">2</a>' in page
    board = site.client.get("/board.json").json()
    assert board["total"] == 3 and board["groups"] == [
        {"name": "KUDU", "counts": board["groups"][0]["counts"]}
    ]
    assert board["groups"][0]["counts"]["blocked"] == 2


def test_finding_a_vin_opens_its_page_and_a_malformed_vin_is_refused() -> None:
    site = Site()
    site.sign_in_as(VIEWER)
    assert site.client.get("/records", params={"vin": " wdb123 "}).headers["location"] == "/records/WDB123"
    assert site.client.get("/records", params={"vin": ""}).status_code == 422
    assert site.client.get("/records/NOT-A-VIN").status_code == 422
    assert "the pipeline has not seen this VIN" in site.client.get("/records/wdb123").text


def test_a_downloaded_certificate_is_the_archived_bytes_with_their_hash() -> None:
    site = Site()
    xml = b"<?xml version='1.0'?><Ivi>as archived</Ivi>"
    site.api.certificates[VIN] = Certificate(xml, {"x-coc-revision": "2", "x-coc-sha256": "abc"})
    site.api.evidence_zips[VIN] = b"PK zip"
    site.sign_in_as(VIEWER)
    response = site.client.get(f"/records/{VIN.lower()}/certificate.xml")
    assert response.content == xml and response.headers["x-coc-sha256"] == "abc"
    assert response.headers["content-disposition"] == f'attachment; filename="{VIN}-2.xml"'
    evidence = site.client.get(f"/records/{VIN}/evidence.zip", params={"revision": 2})
    assert evidence.content == b"PK zip"
    assert evidence.headers["content-disposition"] == f'attachment; filename="evidence-{VIN}-2.zip"'
    assert site.client.get("/records/NOCERT/certificate.xml").status_code == 404
    assert site.client.get("/records/NOCERT/evidence.zip").status_code == 404


@pytest.fixture(scope="module")
def signed(unsigned_specimen: bytes, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    keys = tmp_path_factory.mktemp("seal")
    write_dev_seal(keys)
    seal = Seal.from_pem((keys / KEY_FILE).read_bytes(), (keys / CERT_FILE).read_bytes())
    return seal.sign(unsigned_specimen)


def test_the_record_page_shows_the_archived_certificates_check_and_its_approval(
    signed: bytes, xsd_path: Path
) -> None:
    from devkit.samples import generate

    approval = generate(vehicles=1, seed=3, defect_share=0.0).approvals[0]
    site = Site(schema=load_ivi_schema(xsd_path))
    site.approvals.add(approval, T0, "type-approval")
    site.api.records[VIN] = record("archived")
    site.api.received[VIN] = {
        "approval_key": approval.key,
        "approval_sha256": "f" * 64,
        "state": "validated",
        "revision": 1,
        "build": {"vin": VIN},
    }
    headers = {"x-coc-revision": "1", "x-coc-sha256": hashlib.sha256(signed).hexdigest()}
    sealed = dt.datetime.now(dt.UTC).isoformat()  # within the dev seal's validity, which starts today
    site.api.certificates[VIN] = Certificate(signed, {**headers, "x-coc-archived-at": sealed})
    site.sign_in_as(VIEWER)
    page = site.client.get(f"/records/{VIN}").text
    assert '<dd data-check="passed">passed</dd>' in page
    assert '<dd data-check="schema">yes</dd>' in page and "(as archived)" in page
    assert f"<code data-approval-hash>{'f' * 64}</code>" in page and approval.number in page


def test_an_approval_page_shows_its_history_and_an_unknown_key_is_a_404() -> None:
    from devkit.samples import generate

    approval = generate(vehicles=1, seed=3, defect_share=0.0).approvals[0]
    site = Site()
    site.approvals.add(approval, T0, "type-approval")
    site.api.waiting[approval.key] = [{"vin": VIN, "revision": 1}]
    site.sign_in_as(VIEWER)
    assert approval.number in site.client.get("/approvals").text
    page = site.client.get(f"/approvals/{approval.key}").text
    assert "first version seen" in page and f'href="/records/{VIN}"' in page
    assert site.client.get("/approvals/no-such-key").status_code == 404


# -- the forms' markup --------------------------------------------------------------------------


def test_every_form_that_changes_something_carries_the_csrf_field_of_the_one_macro() -> None:
    forms = 0
    for template in TEMPLATES.glob("*.html"):
        for form in re.findall(r"<form\b[^>]*>.*?</form>", template.read_text(), flags=re.S):
            if 'method="post"' in form:
                forms += 1
                assert "{{ csrf_field(" in form, f"{template.name}: a form without the CSRF field"
                assert 'name="csrf"' not in form, f"{template.name}: a CSRF field written by hand"
    assert forms >= 5


def test_the_csrf_macro_renders_the_hidden_field_escaped() -> None:
    from services.workspace.routes.answers import templates

    macro = templates().env.get_template("forms.html").module.csrf_field  # type: ignore[attr-defined]
    assert str(macro('a"b')) == '<input type="hidden" name="csrf" value="a&#34;b">'


def test_every_pages_markup_parses_as_html() -> None:
    site = Site()
    site.api.records[VIN] = record()
    site.sign_in_as(REVIEWER)
    for path in ["/", "/worklists/production", f"/records/{VIN}", "/approvals", "/rollout"]:
        etree.fromstring(site.client.get(path).content, etree.HTMLParser(recover=False))
